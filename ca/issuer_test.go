package ca_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
)

func testIdentity() ca.Identity {
	return ca.Identity{TrustDomain: "workers.example.com", Pool: "builders", WorkerID: "host-01", Method: "token", EnrollmentID: "tok123"}
}

func mustProfile(t *testing.T, cfg ca.ProfileConfig) *ca.Profile {
	t.Helper()
	p, err := ca.NewProfile(cfg)
	if err != nil {
		t.Fatalf("NewProfile: %v", err)
	}
	return p
}

func TestIssueProfile(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	now := catest.Epoch
	iss := h.Issuer(t, ca.Config{
		Clock:      func() time.Time { return now },
		CRLBaseURL: "http://ca.example.com",
		CRLShards:  16,
		OCSPURLs:   []string{"http://ca.example.com/ocsp"},
		IssuerURLs: []string{"http://ca.example.com/v1/intermediate.cer"},
	})
	profile := mustProfile(t, ca.ProfileConfig{Name: "builders", TTL: 2 * time.Hour})
	for _, kt := range ca.DefaultKeyTypes {
		t.Run("ok/"+string(kt), func(t *testing.T) {
			t.Parallel()
			key := catest.Key(t, kt)
			cert, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, key), Profile: profile, Identity: testIdentity()})
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{
				Roots: h.Roots(), Intermediates: pool(h.Intermediate), CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				t.Fatalf("chain does not verify: %v", err)
			}
			wantURI := "spiffe://workers.example.com/worker/builders/host-01"
			if len(cert.URIs) != 1 || cert.URIs[0].String() != wantURI {
				t.Errorf("URIs = %v, want only %s", cert.URIs, wantURI)
			}
			if len(cert.DNSNames) != 0 || cert.Subject.CommonName != "host-01" {
				t.Errorf("identity leaked from CSR: CN=%q DNS=%v", cert.Subject.CommonName, cert.DNSNames)
			}
			if cert.KeyUsage != x509.KeyUsageDigitalSignature {
				t.Errorf("KeyUsage = %v", cert.KeyUsage)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v", cert.ExtKeyUsage)
			}
			if cert.IsCA || !cert.BasicConstraintsValid {
				t.Errorf("basic constraints: IsCA=%v valid=%v", cert.IsCA, cert.BasicConstraintsValid)
			}
			if len(cert.SubjectKeyId) == 0 || !bytes.Equal(cert.AuthorityKeyId, h.Intermediate.SubjectKeyId) {
				t.Errorf("SKI/AKI wrong: ski=%x aki=%x", cert.SubjectKeyId, cert.AuthorityKeyId)
			}
			wantCDP := fmt.Sprintf("http://ca.example.com/crl/%d.crl", new(big.Int).Mod(cert.SerialNumber, big.NewInt(16)).Int64())
			if !slices.Equal(cert.CRLDistributionPoints, []string{wantCDP}) ||
				!slices.Equal(cert.OCSPServer, []string{"http://ca.example.com/ocsp"}) ||
				!slices.Equal(cert.IssuingCertificateURL, []string{"http://ca.example.com/v1/intermediate.cer"}) {
				t.Errorf("CDP/AIA wrong: %v %v %v", cert.CRLDistributionPoints, cert.OCSPServer, cert.IssuingCertificateURL)
			}
			if got, want := cert.NotBefore, now.Add(-time.Minute); !got.Equal(want) {
				t.Errorf("NotBefore = %s, want %s", got, want)
			}
			if got, want := cert.NotAfter, now.Add(2*time.Hour); !got.Equal(want) {
				t.Errorf("NotAfter = %s, want %s", got, want)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() < 128 {
				t.Errorf("serial %x has %d bits", cert.SerialNumber, cert.SerialNumber.BitLen())
			}
			if len(ca.SerialHex(cert.SerialNumber)) != 40 {
				t.Errorf("SerialHex = %q, want 40 hex digits", ca.SerialHex(cert.SerialNumber))
			}
			e, ok, err := ca.ParseEnrollment(cert, ca.DefaultEnrollmentOID)
			if err != nil || !ok {
				t.Fatalf("enrollment extension: ok=%v err=%v", ok, err)
			}
			if e != (ca.Enrollment{Pool: "builders", Method: "token", EnrollmentID: "tok123"}) {
				t.Errorf("enrollment extension = %+v", e)
			}
			for _, ext := range cert.Extensions {
				if ext.Id.Equal(ca.DefaultEnrollmentOID) && ext.Critical {
					t.Error("enrollment extension must not be critical")
				}
			}
		})
	}
}

func TestIssueRefusals(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return catest.Epoch }})
	ecOnly := mustProfile(t, ca.ProfileConfig{Name: "builders", KeyTypes: []ca.KeyType{ca.KeyP256}})
	all := mustProfile(t, ca.ProfileConfig{Name: "builders"})
	parse := func(der []byte) *x509.CertificateRequest {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return csr
	}
	tests := []struct {
		name    string
		csr     *x509.CertificateRequest
		profile *ca.Profile
		id      ca.Identity
		want    error
	}{
		{"fail/rsa-1024", catest.ParsedCSR(t, catest.WeakKey(t, "rsa1024")), all, testIdentity(), ca.ErrKeyNotAllowed},
		{"fail/p-224", catest.ParsedCSR(t, catest.WeakKey(t, "p224")), all, testIdentity(), ca.ErrKeyNotAllowed},
		{"fail/ed25519-not-in-pool-policy", catest.ParsedCSR(t, catest.Key(t, ca.KeyEd25519)), ecOnly, testIdentity(), ca.ErrKeyNotAllowed},
		{"fail/csr-bad-signature", parse(catest.BadSignatureCSR(t)), all, testIdentity(), ca.ErrBadCSR},
		{"fail/identity-pool-is-not-profile", catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), all, ca.Identity{TrustDomain: "workers.example.com", Pool: "other", WorkerID: "w"}, ca.ErrProfile},
		{"fail/worker-id-not-a-path-segment", catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), all, ca.Identity{TrustDomain: "workers.example.com", Pool: "builders", WorkerID: "a/b"}, ca.ErrProfile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := iss.Issue(ca.IssueRequest{CSR: tc.csr, Profile: tc.profile, Identity: tc.id})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTemplateCannotBreakProfile(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return catest.Epoch }})
	tests := []struct {
		name, template string
	}{
		{"fail/cn-from-csr", `{"subject": {"commonName": {{ toJson .Insecure.CR.Subject.CommonName }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}`},
		{"fail/dns-from-csr", `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "dnsNames": {{ toJson .Insecure.CR.DNSNames }}, "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}`},
		{"fail/second-uri", `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}, "https://x.example"], "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}`},
		{"fail/cert-sign", `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "keyUsage": ["digitalSignature", "certSign"], "extKeyUsage": ["clientAuth"]}`},
		{"fail/server-auth", `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth", "serverAuth"]}`},
		{"fail/unknown-field", `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"], "isCA": true}`},
		{"fail/template-fails", `{{ fail "pool closed" }}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustProfile(t, ca.ProfileConfig{Name: "builders", Template: tc.template})
			_, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: p, Identity: testIdentity()})
			if !errors.Is(err, ca.ErrProfile) {
				t.Fatalf("err = %v, want ErrProfile", err)
			}
		})
	}
	t.Run("ok/template-basic-constraints-ignored", func(t *testing.T) {
		t.Parallel()
		p := mustProfile(t, ca.ProfileConfig{Name: "builders", Template: `{"subject": {"commonName": {{ toJson .Worker.ID }}}, "uris": [{{ toJson .Worker.SPIFFEID }}], "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"], "basicConstraints": {"isCA": true, "maxPathLen": 3}}`})
		cert, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: p, Identity: testIdentity()})
		if err != nil {
			t.Fatal(err)
		}
		if cert.IsCA {
			t.Fatal("template made a CA certificate")
		}
	})
}

func TestNotAfterClampedToIntermediate(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	nearEnd := h.Intermediate.NotAfter.Add(-30 * time.Minute)
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return nearEnd }})
	p := mustProfile(t, ca.ProfileConfig{Name: "builders", TTL: 24 * time.Hour})
	cert, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: p, Identity: testIdentity()})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Equal(h.Intermediate.NotAfter) {
		t.Fatalf("NotAfter = %s, want intermediate's %s", cert.NotAfter, h.Intermediate.NotAfter)
	}
	expired := h.Issuer(t, ca.Config{Clock: func() time.Time { return h.Intermediate.NotAfter.Add(time.Second) }})
	if _, err := expired.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: p, Identity: testIdentity()}); !errors.Is(err, ca.ErrIntermediate) {
		t.Fatalf("issuing past the intermediate: err = %v, want ErrIntermediate", err)
	}
}

func TestNewProfileRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  ca.ProfileConfig
	}{
		{"fail/ttl-over-7-days", ca.ProfileConfig{Name: "p", TTL: 8 * 24 * time.Hour}},
		{"fail/ttl-under-a-minute", ca.ProfileConfig{Name: "p", TTL: time.Second}},
		{"fail/unknown-key-type", ca.ProfileConfig{Name: "p", KeyTypes: []ca.KeyType{"P-224"}}},
		{"fail/bad-template", ca.ProfileConfig{Name: "p", Template: "{{ .Worker.ID "}},
		{"fail/name-with-slash", ca.ProfileConfig{Name: "a/b"}},
		{"fail/empty-name", ca.ProfileConfig{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ca.NewProfile(tc.cfg); err == nil {
				t.Fatal("NewProfile accepted a bad config")
			}
		})
	}
}

func TestNewIssuerRefusals(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch)
	other := catest.Key(t, ca.KeyP256)
	if _, err := ca.New(ca.Config{Intermediate: h.Intermediate, Signer: other}); !errors.Is(err, ca.ErrIntermediate) {
		t.Errorf("mismatched key: err = %v", err)
	}
	leafIss := h.Issuer(t, ca.Config{Clock: func() time.Time { return catest.Epoch }})
	leaf, err := leafIss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, other), Profile: mustProfile(t, ca.ProfileConfig{Name: "builders"}), Identity: testIdentity()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.New(ca.Config{Intermediate: leaf, Signer: other}); !errors.Is(err, ca.ErrIntermediate) {
		t.Errorf("leaf as intermediate: err = %v", err)
	}
	if _, err := ca.New(ca.Config{Intermediate: h.Intermediate, Signer: h.IntermediateKey, CRLBaseURL: "/crl"}); err == nil {
		t.Error("relative CRL URL accepted")
	}
}

func TestSerialsAreRandom(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		s, err := ca.NewSerial(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cmp(new(big.Int).Lsh(big.NewInt(1), 152)) < 0 {
			t.Fatalf("serial %x too small", s)
		}
		h := ca.SerialHex(s)
		if seen[h] {
			t.Fatalf("duplicate serial %s", h)
		}
		seen[h] = true
	}
}

func TestIssueServer(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return catest.Epoch }})
	key := catest.Key(t, ca.KeyP256)
	cert, err := iss.IssueServer(ca.ServerRequest{PublicKey: key.Public(), DNSNames: []string{"localhost"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: h.Roots(), Intermediates: pool(h.Intermediate), DNSName: "localhost", CurrentTime: catest.Epoch}); err != nil {
		t.Fatalf("server cert does not verify for localhost: %v", err)
	}
	if _, err := iss.IssueServer(ca.ServerRequest{PublicKey: key.Public()}); !errors.Is(err, ca.ErrProfile) {
		t.Fatalf("no names: err = %v", err)
	}
}

func TestEnrollmentOIDConfigurable(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	oid := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 99}
	iss := h.Issuer(t, ca.Config{EnrollmentOID: oid, Clock: func() time.Time { return catest.Epoch }})
	cert, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: mustProfile(t, ca.ProfileConfig{Name: "builders"}), Identity: testIdentity()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ca.ParseEnrollment(cert, oid); !ok {
		t.Fatal("extension not under the configured OID")
	}
	if _, ok, _ := ca.ParseEnrollment(cert, ca.DefaultEnrollmentOID); ok {
		t.Fatal("extension also under the default OID")
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestCRLShard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		serial int64
		shards int
		want   int
	}{{12345, 1, 0}, {12345, 0, 0}, {12345, 16, 12345 % 16}, {4096 + 7, 4096, 7}} {
		if got := ca.CRLShard(big.NewInt(tc.serial), tc.shards); got != tc.want {
			t.Errorf("CRLShard(%d, %d) = %d, want %d", tc.serial, tc.shards, got, tc.want)
		}
	}
	if got := ca.CRLShardURL("http://ca.example.com:8080", 7); got != "http://ca.example.com:8080/crl/7.crl" {
		t.Errorf("CRLShardURL = %s", got)
	}
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	for _, cfg := range []ca.Config{
		{CRLShards: -1}, {CRLShards: ca.MaxCRLShards + 1}, {CRLBaseURL: "http://ca.example.com/"},
	} {
		cfg.Intermediate, cfg.Signer = h.Intermediate, h.IntermediateKey
		if _, err := ca.New(cfg); err == nil {
			t.Errorf("ca.New(%+v) accepted a bad CRL setting", cfg)
		}
	}
}

func TestIssueResponder(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := h.Issuer(t, ca.Config{
		Clock: func() time.Time { return catest.Epoch }, CRLBaseURL: "http://ca.example.com",
		OCSPURLs: []string{"http://ca.example.com/ocsp"}, IssuerURLs: []string{"http://ca.example.com/ca.crt"},
	})
	key := catest.Key(t, ca.KeyP256)
	cert, err := iss.IssueResponder(ca.ResponderRequest{PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: h.Roots(), Intermediates: pool(h.Intermediate), CurrentTime: catest.Epoch,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}); err != nil {
		t.Fatalf("responder does not verify for OCSPSigning: %v", err)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) || cert.IsCA {
		t.Errorf("usage: KU %v EKU %v CA %v", cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
	}
	if got := cert.NotAfter.Sub(catest.Epoch); got != 72*time.Hour {
		t.Errorf("lifetime %v, want 72h", got)
	}
	noCheck := false
	for _, e := range cert.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}) {
			noCheck = !e.Critical && bytes.Equal(e.Value, asn1.NullBytes)
		}
	}
	if !noCheck {
		t.Error("no non-critical id-pkix-ocsp-nocheck with a NULL value")
	}
	if len(cert.CRLDistributionPoints)+len(cert.OCSPServer)+len(cert.IssuingCertificateURL) != 0 {
		t.Errorf("responder has CDP/AIA: %v %v %v", cert.CRLDistributionPoints, cert.OCSPServer, cert.IssuingCertificateURL)
	}
	if _, err := iss.IssueResponder(ca.ResponderRequest{PublicKey: catest.WeakKey(t, "p224").Public()}); err == nil {
		t.Error("IssueResponder accepted a P-224 key")
	}
}

func TestParseSerial(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"01ab", "01ab"}, {"01AB", "01ab"}, {"00ff", "ff"}, {strings.Repeat("ff", 20), strings.Repeat("ff", 20)},
		{"", ""}, {"abc", ""}, {"zz", ""}, {"+f", ""}, {"-1", ""}, {"0x01", ""}, {"00", ""}, {strings.Repeat("ab", 21), ""},
	} {
		n, err := ca.ParseSerial(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ca.ErrSerial) {
				t.Errorf("ParseSerial(%q) = %v, %v; want ErrSerial", tc.in, n, err)
			}
			continue
		}
		if err != nil || ca.SerialHex(n) != tc.want {
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", tc.in, n, err, tc.want)
		}
	}
}
