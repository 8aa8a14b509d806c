// Package azuretest mints real Azure IMDS attested documents under a
// locally generated CA, for tests of code that accepts the "azure"
// enrollment method.
//
// An Authority is a stand-in for Microsoft's PKI: a root, an issuing CA
// and a signer certificate for metadata.azure.com. Its documents are real
// PKCS#7 SignedData shaped like Azure's (RSA, SHA-256, no signed
// attributes, sha256WithRSAEncryption in the digest field, only the signer
// certificate inside), so the real verifier accepts them once it trusts
// the Authority:
//
//	a := azuretest.NewAuthority(t)
//	v, err := azure.New(azure.Config{Roots: a.Roots(), Intermediates: a.Intermediates(), Clock: clock})
//	ev := a.Document(t, azuretest.Content{Nonce: nonce, VMID: "vm-1", SubscriptionID: sub, CreatedOn: clock()})
//	doc, err := v.Verify(ev, azure.Policy{Nonce: nonce})
//
// Options make the refusals: WithSignerDNSName("management.azure.com")
// for ErrSigner, WithSignerValidity for a signer that had expired when the
// document was created, a second NewAuthority for an untrusted root.
// Sign signs arbitrary content for malformed documents.
package azuretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/workerca/workerca/enroll/azure"
)

// DocumentLifetime is how long IMDS documents are valid: expiresOn is
// createdOn plus six hours.
const DocumentLifetime = 6 * time.Hour

// Validity of the Authority's certificates unless WithSignerValidity says
// otherwise: wide enough for any pinned test clock, and no time.Now.
var (
	defaultNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	defaultNotAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Authority is a test root → issuing CA → signer hierarchy that signs
// attested documents.
type Authority struct {
	root, issuing, signer *x509.Certificate
	signerKey             *rsa.PrivateKey
	carryIssuing          bool
}

type options struct {
	dnsName      string
	notBefore    time.Time
	notAfter     time.Time
	carryIssuing bool
}

// Option changes how NewAuthority builds the hierarchy.
type Option func(*options)

// WithSignerDNSName gives the signer certificate this DNS name (subject
// CN and only SAN) instead of metadata.azure.com.
func WithSignerDNSName(name string) Option {
	return func(o *options) { o.dnsName = name }
}

// WithSignerValidity sets the signer certificate's notBefore and
// notAfter (the root and issuing CA stay valid 2000–2099).
func WithSignerValidity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.notBefore, o.notAfter = notBefore, notAfter }
}

// WithIssuingInPKCS7 puts the issuing CA certificate in every document's
// PKCS#7 beside the signer (Azure sends the signer only), so a verifier
// can build the chain without being given Intermediates.
func WithIssuingInPKCS7() Option {
	return func(o *options) { o.carryIssuing = true }
}

// NewAuthority generates a root (ECDSA P-256), an issuing CA (ECDSA
// P-256) and a signer (RSA 2048, serverAuth, DNS metadata.azure.com and
// eastus.metadata.azure.com).
func NewAuthority(tb testing.TB, opts ...Option) *Authority {
	tb.Helper()
	o := options{dnsName: azure.SignerDomain, notBefore: defaultNotBefore, notAfter: defaultNotAfter}
	for _, opt := range opts {
		opt(&o)
	}
	rootKey := newECKey(tb)
	root := issue(tb, &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"azuretest"}, CommonName: "azuretest Root"},
		NotBefore:             defaultNotBefore,
		NotAfter:              defaultNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, rootKey.Public(), rootKey)
	issuingKey := newECKey(tb)
	issuing := issue(tb, &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"azuretest"}, CommonName: "azuretest TLS Issuing CA"},
		NotBefore:             defaultNotBefore,
		NotAfter:              defaultNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, root, issuingKey.Public(), rootKey)
	signerKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	dns := []string{o.dnsName}
	if o.dnsName == azure.SignerDomain {
		dns = append([]string{"eastus." + azure.SignerDomain}, dns...)
	}
	signer := issue(tb, &x509.Certificate{
		Subject:     pkix.Name{Country: []string{"US"}, Organization: []string{"azuretest"}, CommonName: o.dnsName},
		DNSNames:    dns,
		NotBefore:   o.notBefore,
		NotAfter:    o.notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, issuing, signerKey.Public(), issuingKey)
	return &Authority{root: root, issuing: issuing, signer: signer, signerKey: signerKey, carryIssuing: o.carryIssuing}
}

// Roots returns the Authority's root, for azure.Config.Roots.
func (a *Authority) Roots() []*x509.Certificate { return []*x509.Certificate{a.root} }

// Intermediates returns the Authority's issuing CA, for
// azure.Config.Intermediates.
func (a *Authority) Intermediates() []*x509.Certificate { return []*x509.Certificate{a.issuing} }

// Signer returns the certificate that signs the Authority's documents.
func (a *Authority) Signer() *x509.Certificate { return a.signer }

// Content is what an attested document says. Empty strings are written
// as Azure writes them (""); ExpiresOn defaults to CreatedOn plus
// DocumentLifetime. CreatedOn is required.
type Content struct {
	Nonce          string
	VMID           string
	SubscriptionID string
	CreatedOn      time.Time
	ExpiresOn      time.Time
	// SKU is the image SKU; Publisher and Offer are the marketplace
	// plan's publisher and product.
	SKU, Publisher, Offer string
}

// JSON returns the content as Azure formats it: its field order, and
// times as "01/02/06 15:04:05 -0000" in UTC.
func (c Content) JSON(tb testing.TB) []byte {
	tb.Helper()
	if c.CreatedOn.IsZero() {
		tb.Fatal("azuretest: Content.CreatedOn is required")
	}
	expires := c.ExpiresOn
	if expires.IsZero() {
		expires = c.CreatedOn.Add(DocumentLifetime)
	}
	type plan struct {
		Name      string `json:"name"`
		Product   string `json:"product"`
		Publisher string `json:"publisher"`
	}
	type timeStamp struct {
		CreatedOn string `json:"createdOn"`
		ExpiresOn string `json:"expiresOn"`
	}
	b, err := json.Marshal(struct {
		LicenseType    string    `json:"licenseType"`
		Nonce          string    `json:"nonce"`
		Plan           plan      `json:"plan"`
		SKU            string    `json:"sku"`
		SubscriptionID string    `json:"subscriptionId"`
		TimeStamp      timeStamp `json:"timeStamp"`
		VMID           string    `json:"vmId"`
	}{
		Nonce:          c.Nonce,
		Plan:           plan{Product: c.Offer, Publisher: c.Publisher},
		SKU:            c.SKU,
		SubscriptionID: c.SubscriptionID,
		TimeStamp:      timeStamp{CreatedOn: azureTime(c.CreatedOn), ExpiresOn: azureTime(expires)},
		VMID:           c.VMID,
	})
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	return b
}

// Document returns a signed attested document as its base64 PKCS#7 (the
// "signature" field of the IMDS answer).
func (a *Authority) Document(tb testing.TB, c Content) azure.Evidence {
	tb.Helper()
	return a.Sign(tb, c.JSON(tb))
}

// Answer returns a signed attested document as the whole IMDS answer,
// {"encoding":"pkcs7","signature":"<base64 PKCS#7>"}.
func (a *Authority) Answer(tb testing.TB, c Content) azure.Evidence {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"encoding": "pkcs7", "signature": a.Document(tb, c).Document})
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	return azure.Evidence{Document: string(b)}
}

// Sign signs arbitrary content the way Azure signs a document and returns
// the base64 PKCS#7; use it for content that is not a valid document.
func (a *Authority) Sign(tb testing.TB, content []byte) azure.Evidence {
	tb.Helper()
	return azure.Evidence{Document: base64.StdEncoding.EncodeToString(a.PKCS7(tb, content))}
}

// PKCS7 returns the DER PKCS#7 SignedData over content.
func (a *Authority) PKCS7(tb testing.TB, content []byte) []byte {
	tb.Helper()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	sd.SetEncryptionAlgorithm(pkcs7.OIDEncryptionAlgorithmRSA)
	if err := sd.SignWithoutAttr(a.signer, a.signerKey, pkcs7.SignerInfoConfig{}); err != nil {
		tb.Fatalf("azuretest: sign: %v", err)
	}
	if a.carryIssuing {
		sd.AddCertificate(a.issuing)
	}
	// Azure's quirk: a signature algorithm OID where the digest OID
	// belongs, in both the SignedData and the SignerInfo.
	quirk := pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDEncryptionAlgorithmRSASHA256}
	raw := sd.GetSignedData()
	raw.DigestAlgorithmIdentifiers = []pkix.AlgorithmIdentifier{quirk}
	raw.SignerInfos[0].DigestAlgorithm = quirk
	der, err := sd.Finish()
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	return der
}

func azureTime(t time.Time) string {
	return t.UTC().Format("01/02/06 15:04:05") + " -0000"
}

func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	return k
}

// issue signs tmpl with signerKey under parent (self-signed when parent
// is nil) and returns the parsed certificate.
func issue(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signerKey crypto.Signer) *x509.Certificate {
	tb.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signerKey)
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("azuretest: %v", err)
	}
	return c
}
