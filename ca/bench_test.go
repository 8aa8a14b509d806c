package ca_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
)

// BenchmarkIssue measures the signing pipeline without a database: parse
// the DER CSR, check its signature and key type, render the pool's
// template and sign with a P-256 intermediate, then re-parse and check
// what was signed. One sub-benchmark per worker key type with the
// default template (built in), and one, P-256/own-template, with the same
// template text given as a pool's own (executed and decoded per request).
func BenchmarkIssue(b *testing.B) {
	h := catest.NewHierarchy(b, catest.Epoch.Add(-time.Hour))
	iss := h.Issuer(b, ca.Config{Clock: func() time.Time { return catest.Epoch }})
	builtin, err := ca.NewProfile(ca.ProfileConfig{Name: "bench", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	own, err := ca.NewProfile(ca.ProfileConfig{Name: "bench", TTL: time.Hour, Template: ca.DefaultTemplate + "\n"})
	if err != nil {
		b.Fatal(err)
	}
	id := ca.Identity{TrustDomain: "workers.example.com", Pool: "bench", WorkerID: "worker-1", Method: "token", EnrollmentID: "0123456789abcdef"}
	for _, tc := range []struct {
		name    string
		kt      ca.KeyType
		profile *ca.Profile
	}{
		{string(ca.KeyP256), ca.KeyP256, builtin},
		{string(ca.KeyP256) + "/own-template", ca.KeyP256, own},
		{string(ca.KeyP384), ca.KeyP384, builtin},
		{string(ca.KeyEd25519), ca.KeyEd25519, builtin},
		{string(ca.KeyRSA), ca.KeyRSA, builtin},
	} {
		profile := tc.profile
		b.Run(tc.name, func(b *testing.B) {
			der := catest.CSR(b, catest.Key(b, tc.kt))
			b.ReportAllocs()
			for b.Loop() {
				csr, err := x509.ParseCertificateRequest(der)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := iss.Issue(ca.IssueRequest{CSR: csr, Profile: profile, Identity: id}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
