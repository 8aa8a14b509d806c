package ocsp_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/workerca/workerca/internal/tooltest"
	"github.com/workerca/workerca/revocation/ocsp"
)

// epoch is the fixed instant the tests pin their times to.
var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// keyKinds are the responder key types Sign supports, by test name.
var keyKinds = []string{"p256", "p384", "rsa2048", "ed25519"}

// newKey makes a real private key of the given kind.
func newKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("generate %s key: %v", kind, err)
	}
	return k
}

// oidNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
var oidNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// chain is a real root → intermediate → delegated OCSP responder hierarchy.
// The intermediate is the issuer the responder answers for.
type chain struct {
	root, inter, responder          *x509.Certificate
	rootKey, interKey, responderKey crypto.Signer
}

// newChain makes a P-256 root and intermediate and a responder certificate
// with a key of responderKind, issued by the intermediate with
// id-kp-OCSPSigning and id-pkix-ocsp-nocheck, valid around epoch.
func newChain(t testing.TB, responderKind string) *chain {
	t.Helper()
	c := &chain{rootKey: newKey(t, "p256"), interKey: newKey(t, "p256"), responderKey: newKey(t, responderKind)}
	c.root = issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "OCSP Test Root"},
		NotBefore:             epoch.Add(-24 * time.Hour),
		NotAfter:              epoch.Add(10 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, c.rootKey.Public(), c.rootKey)
	c.inter = issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "OCSP Test Intermediate"},
		NotBefore:             epoch.Add(-24 * time.Hour),
		NotAfter:              epoch.Add(5 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, c.root, c.interKey.Public(), c.rootKey)
	c.responder = issue(t, responderTemplate(), c.inter, c.responderKey.Public(), c.interKey)
	return c
}

// responderTemplate is a delegated OCSP responder certificate valid from a
// day before epoch for 30 days.
func responderTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "OCSP Test Responder"},
		NotBefore:             epoch.Add(-24 * time.Hour),
		NotAfter:              epoch.Add(30 * 24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions:       []pkix.Extension{{Id: oidNoCheck, Value: []byte{0x05, 0x00}}},
	}
}

// leaf issues a worker certificate with the given serial from the
// intermediate.
func (c *chain) leaf(t testing.TB, serial *big.Int) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "worker-" + serial.Text(16)},
		NotBefore:    epoch.Add(-time.Hour),
		NotAfter:     epoch.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return issue(t, tmpl, c.inter, newKey(t, "p256").Public(), c.interKey)
}

// responderFor builds the Responder of c.
func (c *chain) responderFor(t testing.TB) *ocsp.Responder {
	t.Helper()
	r, err := ocsp.New(ocsp.Config{Issuer: c.inter, Cert: c.responder, Key: c.responderKey})
	if err != nil {
		t.Fatalf("ocsp.New: %v", err)
	}
	return r
}

// issue signs tmpl with parentKey; a nil parent self-signs. A random
// serial is set when tmpl has none.
func issue(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial(t)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatalf("create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

// randomSerial returns a positive 128-bit serial number.
func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // keep 16 octets so the serial prints at a fixed width
	return new(big.Int).SetBytes(b)
}

// requireOpenSSL skips the test when openssl is missing, or fails it under
// CI=true, where nothing may be skipped silently.
func requireOpenSSL(t *testing.T) {
	t.Helper()
	tooltest.Require(t, "openssl")
}

// openssl runs openssl in dir and returns its combined output.
func openssl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writePEM writes certs to dir/name as PEM and returns the file name.
func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(filepath.Join(dir, name), out, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// readFile reads dir/name.
func readFile(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes b to dir/name.
func writeFile(t testing.TB, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
