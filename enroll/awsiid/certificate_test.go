package awsiid_test

import (
	"bytes"
	"crypto"
	"crypto/dsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"testing"

	"github.com/workerca/workerca/enroll/awsiid"
)

// checkSelfSigned verifies cert's signature with its own key by hand:
// Go's x509 refuses SHA-1 and DSA, which AWS's certificates use.
func checkSelfSigned(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.DSAWithSHA1:
		h = crypto.SHA1
	case x509.SHA256WithRSA:
		h = crypto.SHA256
	default:
		t.Fatalf("signature algorithm %v", cert.SignatureAlgorithm)
	}
	d := h.New()
	d.Write(cert.RawTBSCertificate)
	digest := d.Sum(nil)
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, h, digest, cert.Signature); err != nil {
			t.Fatalf("self-signature: %v", err)
		}
	case *dsa.PublicKey:
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(cert.Signature, &rs); err != nil || !dsa.Verify(k, digest, rs.R, rs.S) {
			t.Fatalf("DSA self-signature does not verify (%v)", err)
		}
	default:
		t.Fatalf("key %T", cert.PublicKey)
	}
	if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		t.Fatalf("issuer %q is not subject %q", cert.Issuer, cert.Subject)
	}
}

func TestShipped(t *testing.T) {
	t.Parallel()
	shipped := awsiid.Shipped()
	byForm := map[string]map[string]*x509.Certificate{}
	for _, c := range shipped {
		if byForm[c.Form] == nil {
			byForm[c.Form] = map[string]*x509.Certificate{}
		}
		if _, dup := byForm[c.Form][c.Region]; dup {
			t.Fatalf("two %s certificates for region %q", c.Form, c.Region)
		}
		byForm[c.Form][c.Region] = c.Cert
	}

	t.Run("ok/forms-and-regions", func(t *testing.T) {
		t.Parallel()
		if len(byForm) != 3 {
			t.Fatalf("forms = %v", byForm)
		}
		sig, rsa2048, dsaCerts := byForm[awsiid.FormSignature], byForm[awsiid.FormRSA2048], byForm[awsiid.FormPKCS7DSA]
		if len(sig) != 39 || len(rsa2048) != 39 {
			t.Fatalf("%d signature and %d rsa2048 certificates, want 39 each", len(sig), len(rsa2048))
		}
		for r := range sig {
			if _, ok := rsa2048[r]; !ok || r == "" {
				t.Errorf("region %q has a signature certificate but no rsa2048 one", r)
			}
		}
		if len(dsaCerts) != 1 || dsaCerts[""] == nil {
			t.Fatalf("want one global DSA certificate, got %v", dsaCerts)
		}
		if got := dsaCerts[""].SerialNumber.Text(16); got != "96ba48d9e55e1a67" {
			t.Fatalf("DSA certificate serial %s", got)
		}
	})

	for _, c := range shipped {
		t.Run("ok/self-signed/"+c.Form+"/"+c.Region, func(t *testing.T) {
			t.Parallel()
			checkSelfSigned(t, c.Cert)
			switch k := c.Cert.PublicKey.(type) {
			case *rsa.PublicKey:
				want := map[string]int{awsiid.FormSignature: 1024, awsiid.FormRSA2048: 2048}[c.Form]
				if k.N.BitLen() != want {
					t.Fatalf("RSA-%d key for form %s", k.N.BitLen(), c.Form)
				}
			case *dsa.PublicKey:
				if c.Form != awsiid.FormPKCS7DSA {
					t.Fatalf("DSA key for form %s", c.Form)
				}
			}
		})
	}

	// One upstream copy labels ca-west-1's certificate as ap-northeast-3;
	// AWS's page gives ap-northeast-3 the key most commercial regions
	// share (see certs/SOURCES.md).
	t.Run("ok/ap-northeast-3-uses-the-common-key", func(t *testing.T) {
		t.Parallel()
		sig := byForm[awsiid.FormSignature]
		osaka, virginia, calgary := sig["ap-northeast-3"], sig["us-east-1"], sig["ca-west-1"]
		if !bytes.Equal(osaka.RawSubjectPublicKeyInfo, virginia.RawSubjectPublicKeyInfo) {
			t.Fatal("ap-northeast-3 and us-east-1 signature keys differ")
		}
		if bytes.Equal(osaka.RawSubjectPublicKeyInfo, calgary.RawSubjectPublicKeyInfo) {
			t.Fatal("ap-northeast-3 carries ca-west-1's key")
		}
	})

	t.Run("ok/each-call-is-fresh", func(t *testing.T) {
		t.Parallel()
		a := awsiid.Shipped()
		a[0].Region = "changed"
		if b := awsiid.Shipped(); b[0].Region == "changed" {
			t.Fatal("Shipped returned shared state")
		}
	})
}
