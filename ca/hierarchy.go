package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.step.sm/crypto/x509util"
)

// Default lifetimes of the hierarchy.
const (
	DefaultRootLifetime         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateLifetime = 5 * 365 * 24 * time.Hour
)

// RootRequest describes a new self-signed root.
type RootRequest struct {
	// CommonName is the root's subject CN.
	CommonName string
	// Key is the root's private key (see GenerateKey).
	Key crypto.Signer
	// Lifetime defaults to DefaultRootLifetime.
	Lifetime time.Duration
	// Now is the issuance time.
	Now time.Time
	// Rand is the serial source; nil means crypto/rand.
	Rand io.Reader
}

// NewRoot self-signs a root CA certificate: keyCertSign and cRLSign,
// basic constraints CA with no path length limit (RFC 5280 §4.2.1.9).
func NewRoot(req RootRequest) (*x509.Certificate, error) {
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = DefaultRootLifetime
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             req.Now.Add(-time.Minute).UTC(),
		NotAfter:              req.Now.Add(lifetime).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
	}
	return signCA(tmpl, tmpl, req.Key.Public(), req.Key, req.Rand)
}

// IntermediateRequest describes a new intermediate signed by a root.
type IntermediateRequest struct {
	// CommonName is the intermediate's subject CN.
	CommonName string
	// PublicKey is the intermediate key's public half.
	PublicKey crypto.PublicKey
	// Root and RootKey sign the intermediate.
	Root    *x509.Certificate
	RootKey crypto.Signer
	// Lifetime defaults to DefaultIntermediateLifetime, cut at the root's
	// notAfter.
	Lifetime time.Duration
	// Now is the issuance time.
	Now time.Time
	// Rand is the serial source; nil means crypto/rand.
	Rand io.Reader
}

// NewIntermediate signs the online intermediate: CA with path length 0,
// keyCertSign and cRLSign (DESIGN.md; RFC 5280 §4.2.1.9).
func NewIntermediate(req IntermediateRequest) (*x509.Certificate, error) {
	if req.Root == nil || req.RootKey == nil {
		return nil, fmt.Errorf("ca: intermediate needs the root certificate and key")
	}
	if err := matchKey(req.Root.PublicKey, req.RootKey.Public()); err != nil {
		return nil, fmt.Errorf("ca: root key: %w", err)
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = DefaultIntermediateLifetime
	}
	notAfter := req.Now.Add(lifetime).UTC()
	if notAfter.After(req.Root.NotAfter) {
		notAfter = req.Root.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             req.Now.Add(-time.Minute).UTC(),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	return signCA(tmpl, req.Root, req.PublicKey, req.RootKey, req.Rand)
}

// NewIntermediateCSR makes the PKCS#10 request an offline root signs.
func NewIntermediateCSR(key crypto.Signer, commonName string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: commonName},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("ca: intermediate CSR: %w", err)
	}
	return der, nil
}

// CheckIntermediate verifies that cert can serve as workerca's online
// intermediate under root at time now: it chains to root, is a CA with
// keyCertSign, path length 0, is valid at now, and holds the public key pub.
func CheckIntermediate(cert, root *x509.Certificate, pub crypto.PublicKey, now time.Time) error {
	if err := matchKey(cert.PublicKey, pub); err != nil {
		return fmt.Errorf("%w: %v", ErrIntermediate, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%w: not a CA certificate with keyCertSign", ErrIntermediate)
	}
	if cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		return fmt.Errorf("%w: path length constraint must be 0", ErrIntermediate)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: does not chain to the root: %v", ErrIntermediate, err)
	}
	return nil
}

func signCA(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer, r io.Reader) (*x509.Certificate, error) {
	if r == nil {
		r = rand.Reader
	}
	serial, err := NewSerial(r)
	if err != nil {
		return nil, err
	}
	skid, err := x509util.GenerateSubjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: subject key id: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.SubjectKeyId = skid
	der, err := x509.CreateCertificate(r, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// EncodeCertificates returns certs as concatenated PEM blocks.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// WriteCertificates writes certs as PEM to path (mode 0644), failing if
// the file exists.
func WriteCertificates(path string, certs ...*x509.Certificate) error {
	return writeNew(path, EncodeCertificates(certs...), 0o644)
}

// WriteCSR writes a DER certificate request as PEM to path (mode 0644).
func WriteCSR(path string, der []byte) error {
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644)
}

// ReadCertificates reads every certificate in a PEM file; see
// ParseCertificates.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	certs, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return certs, nil
}

// ParseCertificates parses a PEM bundle of one or more certificates. Text
// between blocks is ignored (bundles carry comments); a PEM block that is
// not a CERTIFICATE is an error, so a key pasted into a bundle is noticed.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca: PEM block %q where certificates were expected", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("ca: no PEM certificates")
	}
	return certs, nil
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
