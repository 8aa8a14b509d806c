package linttest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/workerca/workerca/internal/linttest"
)

// recorder is a testing.TB that records failures and log lines instead of
// failing the test that runs the helper.
type recorder struct {
	testing.TB
	errors, logs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// epoch is the fixed instant the tests pin time to.
func epoch() time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) }

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newCA self-signs a P-256 CA certificate with keyCertSign and cRLSign;
// edit, if set, changes the template first.
func newCA(t *testing.T, key crypto.Signer, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"linttest"}, CommonName: "linttest CA"},
		NotBefore:             epoch().Add(-time.Hour),
		NotAfter:              epoch().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if edit != nil {
		edit(tmpl)
	}
	return create(t, tmpl, tmpl, key.Public(), key)
}

// newLeaf signs a TLS server certificate for worker.example.com with ca;
// edit, if set, changes the template first.
func newLeaf(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "worker.example.com"},
		DNSNames:              []string{"worker.example.com"},
		NotBefore:             epoch().Add(-time.Hour),
		NotAfter:              epoch().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          []byte{1, 2, 3, 4},
	}
	if edit != nil {
		edit(tmpl)
	}
	return create(t, tmpl, ca, newKey(t).Public(), caKey)
}

func create(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newCRL signs a CRL with one entry of the given reason.
func newCRL(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, reason int) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: epoch(),
		NextUpdate: epoch().Add(24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: big.NewInt(2), RevocationTime: epoch().Add(-time.Hour), ReasonCode: reason},
		},
	}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// fullRegistryErrors lists the lints of every source, the CA/Browser
// Forum's included, that find an error or fail.
func fullRegistryErrors(rs *zlint.ResultSet) []string {
	var out []string
	for name, r := range rs.Results {
		if r.Status >= lint.Error {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// checkWebPKI asserts that all of zlint flags webPKIError, if set, and
// that the helper did not: the helper really leaves those lints out.
func checkWebPKI(t *testing.T, rec *recorder, all []string, webPKIError string) {
	t.Helper()
	t.Logf("all of zlint finds %v", all)
	if webPKIError == "" {
		return
	}
	if !slices.Contains(all, webPKIError) {
		t.Errorf("all of zlint does not find %s", webPKIError)
	}
	if slices.ContainsFunc(rec.errors, func(s string) bool { return strings.Contains(s, webPKIError) }) {
		t.Errorf("the helper fails on WebPKI lint %s", webPKIError)
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	got := linttest.Sources()
	for _, want := range []lint.LintSource{lint.RFC5280, lint.Community} {
		if !slices.Contains(got, want) {
			t.Errorf("Sources() lacks %s", want)
		}
	}
	for _, webPKI := range []lint.LintSource{
		lint.CABFBaselineRequirements, lint.CABFEVGuidelines, lint.CABFSMIMEBaselineRequirements,
		lint.CABFCSBaselineRequirements, lint.MozillaRootStorePolicy, lint.AppleRootStorePolicy,
		lint.ChromeRootStorePolicy, lint.EtsiEsi,
	} {
		if slices.Contains(got, webPKI) {
			t.Errorf("Sources() holds WebPKI source %s", webPKI)
		}
	}
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	caKey := newKey(t)
	ca := newCA(t, caKey, nil)
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		// wantErrors and wantLogs are lint names that must appear in
		// the failures and in the log; no other failure may appear.
		wantErrors, wantLogs []string
		// webPKIError, if set, is a lint the helper leaves out that
		// finds an error in cert.
		webPKIError string
	}{
		{name: "ok/ca", cert: ca, webPKIError: "e_ca_country_name_missing"},
		{
			name: "ok/webpki-only-errors-ignored",
			// No certificatePolicies, no AIA, no CDP: fine for a
			// private PKI, errors under the Baseline Requirements.
			cert:        newLeaf(t, ca, caKey, nil),
			webPKIError: "e_sub_cert_certificate_policies_missing",
		},
		{
			name: "ok/warning-logged",
			cert: newLeaf(t, ca, caKey, func(c *x509.Certificate) { c.SubjectKeyId = nil }),
			// Go signs an end-entity certificate without an SKI when the
			// template has none (RFC 5280 §4.2.1.2 SHOULD).
			wantLogs: []string{"w_ext_subject_key_identifier_missing_sub_cert"},
		},
		{
			name: "fail/name-constraints-not-critical",
			// RFC 5280 §4.2.1.10: conforming CAs MUST mark name
			// constraints critical; Go marks them critical only when
			// asked to.
			cert: newCA(t, caKey, func(c *x509.Certificate) {
				c.PermittedDNSDomains = []string{"workers.example.com"}
			}),
			wantErrors:  []string{"e_ext_name_constraints_not_critical"},
			webPKIError: "e_ca_country_name_missing",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			linttest.Certificate(rec, tc.cert)
			check(t, rec, tc.wantErrors, tc.wantLogs)
			zc, err := zx509.ParseCertificate(tc.cert.Raw)
			if err != nil {
				t.Fatal(err)
			}
			checkWebPKI(t, rec, fullRegistryErrors(zlint.LintCertificate(zc)), tc.webPKIError)
		})
	}
}

func TestCRL(t *testing.T) {
	t.Parallel()
	caKey := newKey(t)
	ca := newCA(t, caKey, nil)
	for _, tc := range []struct {
		name        string
		der         []byte
		wantErrors  []string
		webPKIError string
	}{
		{name: "ok/key-compromise", der: newCRL(t, ca, caKey, 1)},
		{
			// cACompromise is a valid RFC 5280 reason the Baseline
			// Requirements forbid on subscriber CRLs.
			name: "ok/webpki-only-errors-ignored", der: newCRL(t, ca, caKey, 2),
			webPKIError: "e_cab_crl_has_valid_reason_code",
		},
		{
			name: "fail/unassigned-reason-7", der: newCRL(t, ca, caKey, 7),
			wantErrors: []string{"e_crl_has_valid_reason_code"},
		},
		{name: "fail/not-a-crl", der: ca.Raw, wantErrors: []string{"zcrypto cannot parse the CRL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			linttest.CRL(rec, tc.der)
			check(t, rec, tc.wantErrors, nil)
			rl, err := zx509.ParseRevocationList(tc.der)
			if err != nil {
				return
			}
			checkWebPKI(t, rec, fullRegistryErrors(zlint.LintRevocationList(rl)), tc.webPKIError)
		})
	}
}

// check asserts that rec failed exactly once for each of wantErrors and
// logged each of wantLogs.
func check(t *testing.T, rec *recorder, wantErrors, wantLogs []string) {
	t.Helper()
	if len(rec.errors) != len(wantErrors) {
		t.Errorf("failures = %q, want one for each of %q", rec.errors, wantErrors)
	}
	for _, want := range wantErrors {
		if !slices.ContainsFunc(rec.errors, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("failures = %q, want one naming %s", rec.errors, want)
		}
	}
	for _, want := range wantLogs {
		if !slices.ContainsFunc(rec.logs, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("logs = %q, want one naming %s", rec.logs, want)
		}
	}
}
