package enroll

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/store"
)

// MethodServer marks the ledger rows of the CA's own TLS server
// certificates: they are recorded like every certificate (DESIGN.md
// principle 2) but belong to no pool.
const MethodServer = "server"

// ServerCertRequest asks for a certificate for workerca's own HTTPS
// listener.
type ServerCertRequest struct {
	// DNSNames and IPAddresses are the names clients dial.
	DNSNames    []string
	IPAddresses []net.IP
	// TTL is the lifetime; 0 means 24 hours.
	TTL time.Duration
}

// IssueServer makes a fresh P-256 key, has the intermediate sign a
// serverAuth certificate for it, records the certificate, and returns the
// chain (leaf, intermediate) with the key.
func (s *Service) IssueServer(ctx context.Context, req ServerCertRequest) ([]*x509.Certificate, crypto.Signer, error) {
	key, err := ca.GenerateKey(ca.KeyP256)
	if err != nil {
		return nil, nil, err
	}
	cert, err := s.cfg.Issuer.IssueServer(ca.ServerRequest{PublicKey: key.Public(), DNSNames: req.DNSNames, IPAddresses: req.IPAddresses, TTL: req.TTL})
	if err != nil {
		return nil, nil, err
	}
	names := append([]string(nil), req.DNSNames...)
	for _, ip := range req.IPAddresses {
		names = append(names, ip.String())
	}
	if err := s.recordOwn(ctx, cert, MethodServer, map[string]any{"names": names}); err != nil {
		return nil, nil, err
	}
	return []*x509.Certificate{cert, s.cfg.Issuer.Intermediate()}, key, nil
}

// MethodResponder marks the ledger rows of the delegated OCSP responder
// certificates.
const MethodResponder = "ocsp-responder"

// IssueResponder makes a fresh P-256 key, has the intermediate sign a
// delegated OCSP responder certificate for it (ttl 0 means 72 hours),
// records it, and returns it with the key.
func (s *Service) IssueResponder(ctx context.Context, ttl time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := ca.GenerateKey(ca.KeyP256)
	if err != nil {
		return nil, nil, err
	}
	cert, err := s.cfg.Issuer.IssueResponder(ca.ResponderRequest{PublicKey: key.Public(), TTL: ttl})
	if err != nil {
		return nil, nil, err
	}
	if err := s.recordOwn(ctx, cert, MethodResponder, map[string]any{"purpose": "ocsp"}); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// recordOwn records one of the CA's own certificates (server, OCSP
// responder): like every certificate (DESIGN.md principle 2), but in no
// pool.
func (s *Service) recordOwn(ctx context.Context, cert *x509.Certificate, method string, evidence any) error {
	serial := ca.SerialHex(cert.SerialNumber)
	now := s.cfg.Clock().UTC()
	ev, _ := json.Marshal(evidence)
	err := s.cfg.Ledger.RecordIssuance(ctx, store.Issuance{
		Certificate: &store.Certificate{
			Serial: serial, WorkerID: cert.Subject.CommonName, SPKISHA256: ca.SPKISHA256(cert),
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Method: method,
			AttestationSubject: method, Evidence: string(ev), DER: cert.Raw, IssuedAt: now,
			RetainUntil: cert.NotAfter.Add(s.cfg.RetentionBuffer), CRLShard: s.crlShard(cert),
		},
		Now:   now,
		Audit: store.AuditEvent{At: now, Actor: "system", Action: "certificate.issued", Target: serial, Detail: string(ev)},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return nil
}
