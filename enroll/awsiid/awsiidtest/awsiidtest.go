// Package awsiidtest mints real AWS instance identity evidence with a
// locally generated key, for tests of code that verifies it (package
// awsiid, enrollment, the HTTP API).
//
// A Signer plays the part of AWS: its certificate goes into
// awsiid.Config.Certificates, and Evidence signs a document exactly as
// IMDS would, in the /signature or /rsa2048 form:
//
//	signer := awsiidtest.NewSigner(t)
//	v, _ := awsiid.New(awsiid.Config{
//		Certificates: []*x509.Certificate{signer.Certificate()},
//		Clock:        func() time.Time { return now },
//	})
//	ev := signer.Evidence(t, awsiidtest.Document{
//		AccountID: "111122223333", Region: "us-east-1",
//		InstanceID: "i-0123456789abcdef0", PendingTime: now,
//	}, awsiid.FormRSA2048)
//	doc, err := v.Verify(ev, awsiid.Policy{Accounts: []string{"111122223333"}})
//
// The evidence is real (RSA signatures, a PKCS#7 SignedData like AWS's),
// only the key is not AWS's, so the shipped certificates never verify it.
package awsiidtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/workerca/workerca/enroll/awsiid"
)

// Signer is a stand-in for AWS's signing key: an RSA-2048 key and a
// self-signed certificate shaped like AWS's regional certificates.
type Signer struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// NewSigner generates a new key and certificate.
func NewSigner(tb testing.TB) *Signer {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("awsiidtest: generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		tb.Fatalf("awsiidtest: serial: %v", err)
	}
	name := pkix.Name{
		Country:      []string{"US"},
		Province:     []string{"Washington State"},
		Locality:     []string{"Seattle"},
		Organization: []string{"Amazon Web Services LLC (awsiidtest stand-in)"},
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      name,
		Issuer:       name,
		// Long-lived like AWS's; the verifier ignores dates anyway.
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:  time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("awsiidtest: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("awsiidtest: parse certificate: %v", err)
	}
	return &Signer{key: key, cert: cert}
}

// Certificate returns the signer's certificate, to trust in
// awsiid.Config.Certificates (every region) or awsiid.Config.Regional.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Document is the content of a stand-in identity document. AccountID,
// Region, InstanceID and PendingTime are written only when set, so a test
// can leave one out; the other fields get plausible defaults.
type Document struct {
	// AccountID is accountId; omitted when empty.
	AccountID string
	// Region is region; omitted when empty.
	Region string
	// InstanceID is instanceId; omitted when empty.
	InstanceID string
	// ImageID is imageId; default "ami-0123456789abcdef0".
	ImageID string
	// InstanceType is instanceType; default "t3.micro".
	InstanceType string
	// AvailabilityZone is availabilityZone; default Region + "a".
	AvailabilityZone string
	// PrivateIP is privateIp; default "10.0.0.10".
	PrivateIP string
	// Architecture is architecture; default "x86_64".
	Architecture string
	// PendingTime is pendingTime, written in UTC to the second as AWS
	// does; omitted when zero.
	PendingTime time.Time
}

// JSON returns the document as IMDS would serve it.
func (d Document) JSON() []byte {
	v := struct {
		AccountID        string  `json:"accountId,omitempty"`
		Architecture     string  `json:"architecture"`
		AvailabilityZone string  `json:"availabilityZone"`
		BillingProducts  *string `json:"billingProducts"`
		ImageID          string  `json:"imageId"`
		InstanceID       string  `json:"instanceId,omitempty"`
		InstanceType     string  `json:"instanceType"`
		PendingTime      string  `json:"pendingTime,omitempty"`
		PrivateIP        string  `json:"privateIp"`
		Region           string  `json:"region,omitempty"`
		Version          string  `json:"version"`
	}{
		AccountID:        d.AccountID,
		Architecture:     or(d.Architecture, "x86_64"),
		AvailabilityZone: or(d.AvailabilityZone, d.Region+"a"),
		ImageID:          or(d.ImageID, "ami-0123456789abcdef0"),
		InstanceID:       d.InstanceID,
		InstanceType:     or(d.InstanceType, "t3.micro"),
		PrivateIP:        or(d.PrivateIP, "10.0.0.10"),
		Region:           d.Region,
		Version:          "2017-09-30",
	}
	if !d.PendingTime.IsZero() {
		v.PendingTime = d.PendingTime.UTC().Format(time.RFC3339)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic("awsiidtest: " + err.Error()) // cannot happen: plain strings
	}
	return b
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Evidence returns d signed in form: awsiid.FormSignature (base64
// RSA-SHA256 over the document, as IMDS /signature) or awsiid.FormRSA2048
// (a base64 PKCS#7 SignedData with SHA-256 and the document as content,
// as IMDS /rsa2048). Document is set in both.
func (s *Signer) Evidence(tb testing.TB, d Document, form string) awsiid.Evidence {
	tb.Helper()
	return s.Sign(tb, d.JSON(), form)
}

// Sign is Evidence for arbitrary document bytes, e.g. a malformed
// document.
func (s *Signer) Sign(tb testing.TB, doc []byte, form string) awsiid.Evidence {
	tb.Helper()
	switch form {
	case awsiid.FormSignature:
		sum := sha256.Sum256(doc)
		sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
		if err != nil {
			tb.Fatalf("awsiidtest: sign: %v", err)
		}
		return awsiid.Evidence{Document: string(doc), Signature: wrap(base64.StdEncoding.EncodeToString(sig))}
	case awsiid.FormRSA2048:
		sd, err := pkcs7.NewSignedData(doc)
		if err != nil {
			tb.Fatalf("awsiidtest: pkcs7: %v", err)
		}
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
			tb.Fatalf("awsiidtest: pkcs7 sign: %v", err)
		}
		der, err := sd.Finish()
		if err != nil {
			tb.Fatalf("awsiidtest: pkcs7 finish: %v", err)
		}
		return awsiid.Evidence{Document: string(doc), PKCS7: wrap(base64.StdEncoding.EncodeToString(der))}
	default:
		tb.Fatalf("awsiidtest: form %q not supported (want %q or %q)", form, awsiid.FormSignature, awsiid.FormRSA2048)
		return awsiid.Evidence{}
	}
}

// wrap breaks base64 text into 64-column lines, as IMDS does.
func wrap(s string) string {
	var out []byte
	for len(s) > 64 {
		out = append(out, s[:64]...)
		out = append(out, '\n')
		s = s[64:]
	}
	return string(append(out, s...))
}
