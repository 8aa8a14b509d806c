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
	serial := ca.SerialHex(cert.SerialNumber)
	now := s.cfg.Clock().UTC()
	names := append([]string(nil), req.DNSNames...)
	for _, ip := range req.IPAddresses {
		names = append(names, ip.String())
	}
	evidence, _ := json.Marshal(map[string]any{"names": names})
	err = s.cfg.Ledger.RecordIssuance(ctx, store.Issuance{
		Certificate: &store.Certificate{
			Serial: serial, WorkerID: cert.Subject.CommonName, SPKISHA256: ca.SPKISHA256(cert),
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Method: MethodServer,
			AttestationSubject: "server", Evidence: string(evidence), DER: cert.Raw, IssuedAt: now,
			RetainUntil: cert.NotAfter.Add(s.cfg.RetentionBuffer),
		},
		Now:   now,
		Audit: store.AuditEvent{At: now, Actor: "system", Action: "certificate.issued", Target: serial, Detail: string(evidence)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return []*x509.Certificate{cert, s.cfg.Issuer.Intermediate()}, key, nil
}
