package revocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"
)

// Test-only views of a Service, for package revocation_test.

// Shards is the number of CRL shards.
func (s *Service) Shards() int { return s.cfg.CRLShards }

// Rebuild builds the shard's CRL now.
func (s *Service) Rebuild(ctx context.Context, shard int) error {
	if shard < 0 || shard >= s.cfg.CRLShards {
		return fmt.Errorf("%w: shard %d", ErrNoCRL, shard)
	}
	return s.crls.build(ctx, shard, time.Time{})
}

// ResponderCertificate returns the current delegated responder
// certificate.
func (s *Service) ResponderCertificate() *x509.Certificate {
	s.ocsp.mu.RLock()
	defer s.ocsp.mu.RUnlock()
	return s.ocsp.cert
}
