package azure_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/azure"
)

// TestShippedCertificates pins the shipped roots by SHA-256 and checks
// that every shipped intermediate is a CA signed by a shipped root (or by
// another shipped intermediate that is), so a mistyped or substituted
// file fails here rather than in production.
func TestShippedCertificates(t *testing.T) {
	t.Parallel()
	wantRoots := map[string]string{
		"Baltimore CyberTrust Root":                     "16af57a9f676b0ab126095aa5ebadef22ab31119d644ac95cd4b93dbf3f26aeb",
		"DigiCert Global Root G2":                       "cb3ccbb76031e5e0138f8dd39a23f9de47ffc35e43c1144cea27d46a5ab1cb5f",
		"Microsoft RSA Root Certificate Authority 2017": "c741f70f4b2a8d88bf2e71c14122ef53ef10eba0cfa5e64cfa20f418853073e0",
		"Microsoft TLS RSA Root G2":                     "6a170583db584151e1c454eeca2a64cc5d8e484a5bd1156e720b4458654ee9e5",
	}
	roots := azure.ShippedRoots()
	if len(roots) != len(wantRoots) {
		t.Errorf("%d shipped roots, want %d", len(roots), len(wantRoots))
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		sum := sha256.Sum256(r.Raw)
		if got, want := hex.EncodeToString(sum[:]), wantRoots[r.Subject.CommonName]; got != want {
			t.Errorf("root %q SHA-256 %s, want %q", r.Subject.CommonName, got, want)
		}
		if !bytes.Equal(r.RawSubject, r.RawIssuer) || !r.IsCA {
			t.Errorf("root %q is not a self-issued CA", r.Subject.CommonName)
		}
		pool.AddCert(r)
	}

	inters := azure.ShippedIntermediates()
	if len(inters) < 22 {
		t.Errorf("%d shipped intermediates, want at least 22", len(inters))
	}
	ipool := x509.NewCertPool()
	for _, c := range inters {
		ipool.AddCert(c)
	}
	for _, c := range inters {
		t.Run(c.Subject.CommonName+"/"+c.Issuer.CommonName, func(t *testing.T) {
			t.Parallel()
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Fatal("not a CA certificate")
			}
			at := c.NotBefore.Add(time.Hour)
			chains, err := c.Verify(x509.VerifyOptions{Roots: pool, Intermediates: ipool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil {
				t.Fatalf("does not chain to a shipped root at %s: %v", at.Format(time.RFC3339), err)
			}
			top := chains[0][len(chains[0])-1]
			t.Logf("chains to %q, valid until %s", top.Subject.CommonName, c.NotAfter.Format(time.DateOnly))
		})
	}

	if a, b := azure.ShippedRoots(), azure.ShippedRoots(); a[0] == b[0] {
		t.Error("ShippedRoots returns shared certificates; want fresh copies")
	}
}
