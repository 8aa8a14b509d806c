// Package catest mints real hierarchies, keys and CSRs for tests. Nothing
// in it is fake: the keys are real, the certificates are really signed, so
// tests that use it exercise the same code paths as production.
package catest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
)

// Epoch is the fixed instant tests pin their clocks to.
var Epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Hierarchy is a root and an intermediate with their keys.
type Hierarchy struct {
	Root            *x509.Certificate
	RootKey         crypto.Signer
	Intermediate    *x509.Certificate
	IntermediateKey crypto.Signer
}

// NewHierarchy makes a P-256 root and intermediate valid from
// shortly before now for the default lifetimes.
func NewHierarchy(t testing.TB, now time.Time) *Hierarchy {
	t.Helper()
	rootKey := Key(t, ca.KeyP256)
	root, err := ca.NewRoot(ca.RootRequest{CommonName: "Test Root", Key: rootKey, Now: now})
	if err != nil {
		t.Fatalf("catest: root: %v", err)
	}
	intKey := Key(t, ca.KeyP256)
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{
		CommonName: "Test Intermediate", PublicKey: intKey.Public(),
		Root: root, RootKey: rootKey, Now: now,
	})
	if err != nil {
		t.Fatalf("catest: intermediate: %v", err)
	}
	return &Hierarchy{Root: root, RootKey: rootKey, Intermediate: inter, IntermediateKey: intKey}
}

// Issuer returns an Issuer over the hierarchy with cfg's optional fields;
// cfg.Intermediate and cfg.Signer are filled in.
func (h *Hierarchy) Issuer(t testing.TB, cfg ca.Config) *ca.Issuer {
	t.Helper()
	cfg.Intermediate, cfg.Signer = h.Intermediate, h.IntermediateKey
	iss, err := ca.New(cfg)
	if err != nil {
		t.Fatalf("catest: issuer: %v", err)
	}
	return iss
}

// Roots returns a pool holding the root.
func (h *Hierarchy) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.Root)
	return p
}

// Key makes a private key of one of workerca's key types.
func Key(t testing.TB, kt ca.KeyType) crypto.Signer {
	t.Helper()
	k, err := ca.GenerateKey(kt)
	if err != nil {
		t.Fatalf("catest: key: %v", err)
	}
	return k
}

// WeakKey makes keys workerca must refuse: "rsa1024" or "p224".
func WeakKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	default:
		t.Fatalf("catest: unknown weak key %q", kind)
	}
	if err != nil {
		t.Fatalf("catest: weak key: %v", err)
	}
	return k
}

// CSR makes a DER CSR for key. The subject CN and DNS names are set to
// values a CA must ignore, so tests can prove identity never comes from the
// CSR.
func CSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "csr-claims-to-be-admin"},
		DNSNames: []string{"evil.example.com"},
	}, key)
	if err != nil {
		t.Fatalf("catest: csr: %v", err)
	}
	return der
}

// ParsedCSR is CSR parsed.
func ParsedCSR(t testing.TB, key crypto.Signer) *x509.CertificateRequest {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(CSR(t, key))
	if err != nil {
		t.Fatalf("catest: parse csr: %v", err)
	}
	return csr
}

// BadSignatureCSR returns a CSR whose signature does not verify: one bit of
// the signature is flipped.
func BadSignatureCSR(t testing.TB) []byte {
	t.Helper()
	der := CSR(t, Key(t, ca.KeyEd25519))
	out := append([]byte(nil), der...)
	out[len(out)-1] ^= 0x01 // Ed25519 signatures end the DER; flip the last signature byte
	return out
}

// Worker issues a real worker certificate for key in pool/worker at now,
// valid for ttl, through an Issuer over h.
func (h *Hierarchy) Worker(t testing.TB, key crypto.Signer, pool, worker string, now time.Time, ttl time.Duration) *x509.Certificate {
	t.Helper()
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return now }})
	profile, err := ca.NewProfile(ca.ProfileConfig{Name: pool, TTL: ttl})
	if err != nil {
		t.Fatalf("catest: profile: %v", err)
	}
	cert, err := iss.Issue(ca.IssueRequest{
		CSR: ParsedCSR(t, key), Profile: profile,
		Identity: ca.Identity{TrustDomain: "workers.test", Pool: pool, WorkerID: worker, Method: "token"},
	})
	if err != nil {
		t.Fatalf("catest: worker certificate: %v", err)
	}
	return cert
}
