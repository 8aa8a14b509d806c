package linttest

import (
	"crypto/x509"
	"slices"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Sources lists the zlint lint sources that apply to workerca's private
// PKI; see the package documentation.
func Sources() lint.SourceList {
	return lint.SourceList{
		lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891,
		lint.RFC6960, lint.RFC6962, lint.RFC8813, lint.Community,
	}
}

// Certificate fails t for every zlint result of level Error or Fatal on c
// from Sources, naming the lint, and logs every warning with t.Logf.
func Certificate(t testing.TB, c *x509.Certificate) {
	t.Helper()
	if c == nil {
		t.Fatalf("linttest: nil certificate")
		return
	}
	zc, err := zx509.ParseCertificate(c.Raw)
	if err != nil {
		t.Fatalf("linttest: zcrypto cannot parse the certificate %s: %v", c.Subject, err)
		return
	}
	report(t, "certificate "+c.Subject.String(), zlint.LintCertificateEx(zc, registry(t)))
}

// CRL fails t for every zlint result of level Error or Fatal on the DER
// CRL der from Sources, naming the lint, and logs every warning with
// t.Logf.
func CRL(t testing.TB, der []byte) {
	t.Helper()
	rl, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("linttest: zcrypto cannot parse the CRL: %v", err)
		return
	}
	report(t, "CRL", zlint.LintRevocationListEx(rl, registry(t)))
}

// registry returns zlint's global registry narrowed to Sources.
func registry(t testing.TB) lint.Registry {
	t.Helper()
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: Sources()})
	if err != nil {
		t.Fatalf("linttest: filter zlint registry: %v", err)
	}
	return r
}

// report turns rs into test failures and log lines, in lint name order.
func report(t testing.TB, what string, rs *zlint.ResultSet) {
	t.Helper()
	names := make([]string, 0, len(rs.Results))
	for name := range rs.Results {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := rs.Results[name]
		switch r.Status {
		case lint.Error, lint.Fatal:
			t.Errorf("linttest: %s: %s %s (%s): %s", what, r.Status, name, source(r), detail(r))
		case lint.Warn:
			t.Logf("linttest: %s: warning %s (%s): %s", what, name, source(r), detail(r))
		}
	}
}

// source is r's lint source and citation, when it has one.
func source(r *lint.LintResult) string {
	if r.LintMetadata.Citation == "" {
		return string(r.LintMetadata.Source)
	}
	return string(r.LintMetadata.Source) + ", " + r.LintMetadata.Citation
}

// detail is r's details, or its lint's description when it gave none.
func detail(r *lint.LintResult) string {
	if r.Details != "" {
		return r.Details
	}
	return r.LintMetadata.Description
}
