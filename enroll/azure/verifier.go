package azure

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxEvidenceBytes bounds Evidence.Document. A real IMDS answer is about
// 4 KiB; anything far larger is refused before decoding.
const MaxEvidenceBytes = 64 << 10

// ClockSkew is how far in the future a document's createdOn may be
// before it is refused: the VM's host and this server do not share a
// clock.
const ClockSkew = time.Minute

// Evidence is what a worker sends for the "azure" enrollment method.
type Evidence struct {
	// Document is the IMDS attested document: either the base64 PKCS#7
	// (the "signature" field of the answer to
	// GET /metadata/attested/document?api-version=2020-09-01&nonce=<nonce>)
	// or that whole JSON answer, {"encoding":"pkcs7","signature":"..."}.
	Document string `json:"document"`
}

// Config configures a Verifier. The zero value trusts the shipped
// Microsoft roots and uses the real clock.
type Config struct {
	// Roots are the trust anchors a signer certificate must chain to.
	// nil means ShippedRoots(); a non-nil empty slice is an error.
	Roots []*x509.Certificate
	// Intermediates are extra issuing CAs offered for chain building, in
	// addition to ShippedIntermediates() and the certificates carried in
	// the PKCS#7. Use it when Azure starts using an issuing CA that this
	// release does not ship.
	Intermediates []*x509.Certificate
	// Clock returns the current time for the expiresOn and createdOn
	// checks. nil means time.Now.
	Clock func() time.Time
}

// Policy is what one enrollment expects of a document.
type Policy struct {
	// Nonce is the challenge nonce this enrollment issued; the document's
	// nonce must equal it exactly. Required: an empty Nonce refuses every
	// document with ErrNonce.
	Nonce string
	// Subscriptions are the allowed Azure subscription IDs, compared
	// case-insensitively (they are GUIDs). Empty allows any subscription,
	// including a document without one.
	Subscriptions []string
}

// Document is a verified attested document.
type Document struct {
	// VMID is the VM's unique ID (vmId); it is the worker ID.
	VMID string
	// SubscriptionID is the VM's subscription (empty in documents from
	// older IMDS versions, such as one seen from 2019).
	SubscriptionID string
	// Nonce is the document's nonce (equal to Policy.Nonce).
	Nonce string
	// Publisher and Offer are the marketplace plan's publisher and
	// product (empty for images without a plan); SKU is the image SKU
	// (the document's top-level "sku").
	Publisher, Offer, SKU string
	// CreatedOn and ExpiresOn are timeStamp.createdOn and
	// timeStamp.expiresOn, in UTC.
	CreatedOn, ExpiresOn time.Time
	// Signer is the certificate that signed the document.
	Signer *x509.Certificate
	// SHA256 is the lowercase hex SHA-256 of the PKCS#7 bytes as sent
	// (after base64 decoding), a key for replay protection.
	SHA256 string
}

// Verifier verifies Azure IMDS attested documents. It is safe for
// concurrent use.
type Verifier struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool
	clock         func() time.Time
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	roots := cfg.Roots
	if roots == nil {
		roots = ShippedRoots()
	}
	if len(roots) == 0 {
		return nil, errors.New("azure: Config.Roots is empty; leave it nil for the shipped Microsoft roots")
	}
	v := &Verifier{roots: x509.NewCertPool(), intermediates: x509.NewCertPool(), clock: cfg.Clock}
	for i, c := range roots {
		if c == nil {
			return nil, fmt.Errorf("azure: Config.Roots[%d] is nil", i)
		}
		v.roots.AddCert(c)
	}
	for _, c := range ShippedIntermediates() {
		v.intermediates.AddCert(c)
	}
	for i, c := range cfg.Intermediates {
		if c == nil {
			return nil, fmt.Errorf("azure: Config.Intermediates[%d] is nil", i)
		}
		v.intermediates.AddCert(c)
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	return v, nil
}

// Verify checks ev against p and returns the verified document. In order:
// the evidence decodes to a PKCS#7 SignedData with one signer (else
// ErrMalformed); the signature is RSA PKCS#1 v1.5 over the SHA-256 of the
// content (ErrSignature); the content is attested-data JSON valid for at
// most MaxLifetime (ErrMalformed); the signer chains to a root at
// createdOn, with createdOn inside its validity and serverAuth allowed
// along the chain (ErrUntrusted); the signer is metadata.azure.com
// (ErrSigner); expiresOn is after now and createdOn not after
// now+ClockSkew (ErrExpired); the nonce equals p.Nonce (ErrNonce); the
// subscription is allowed (ErrSubscriptionNotAllowed).
//
// The chain is verified at createdOn rather than now because it is the
// instant Azure signed. createdOn is trusted only once the signature
// verifies, and MaxLifetime with the expiresOn check keeps it within six
// hours of now.
func (v *Verifier) Verify(ev Evidence, p Policy) (*Document, error) {
	der, err := decodeEvidence(ev.Document)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s, err := parseSigned(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := s.verifySignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	a, err := parseContent(s.content)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := v.verifyChain(s, a.createdOn); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	if !signerIsMetadata(s.signer) {
		return nil, fmt.Errorf("%w: signer DNS names %q, CN %q", ErrSigner, s.signer.DNSNames, s.signer.Subject.CommonName)
	}
	now := v.clock()
	if !now.Before(a.expiresOn) {
		return nil, fmt.Errorf("%w: expiresOn %s is not after now %s", ErrExpired, a.expiresOn.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if a.createdOn.After(now.Add(ClockSkew)) {
		return nil, fmt.Errorf("%w: createdOn %s is in the future (now %s)", ErrExpired, a.createdOn.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if p.Nonce == "" {
		return nil, fmt.Errorf("%w: the policy expects no nonce", ErrNonce)
	}
	if subtle.ConstantTimeCompare([]byte(a.Nonce), []byte(p.Nonce)) != 1 {
		return nil, fmt.Errorf("%w: document nonce %q", ErrNonce, a.Nonce)
	}
	if !subscriptionAllowed(a.SubscriptionID, p.Subscriptions) {
		return nil, fmt.Errorf("%w: %q", ErrSubscriptionNotAllowed, a.SubscriptionID)
	}
	sum := sha256.Sum256(der)
	return &Document{
		VMID:           a.VMID,
		SubscriptionID: a.SubscriptionID,
		Nonce:          a.Nonce,
		Publisher:      a.Plan.Publisher,
		Offer:          a.Plan.Product,
		SKU:            a.SKU,
		CreatedOn:      a.createdOn,
		ExpiresOn:      a.expiresOn,
		Signer:         s.signer,
		SHA256:         hex.EncodeToString(sum[:]),
	}, nil
}

// verifyChain builds a chain from the signer to a root at createdOn
// (RFC 5280 §6.1 with the validity instant set to createdOn) through the
// shipped, configured and PKCS#7-carried intermediates. The signer is a
// TLS server certificate, so serverAuth must be allowed along the chain.
func (v *Verifier) verifyChain(s *signed, createdOn time.Time) error {
	if createdOn.Before(s.signer.NotBefore) || createdOn.After(s.signer.NotAfter) {
		return fmt.Errorf("createdOn %s is outside the signer's validity [%s, %s]",
			createdOn.Format(time.RFC3339), s.signer.NotBefore.UTC().Format(time.RFC3339), s.signer.NotAfter.UTC().Format(time.RFC3339))
	}
	pool := v.intermediates
	if len(s.p7.Certificates) > 1 {
		pool = pool.Clone()
		for _, c := range s.p7.Certificates {
			pool.AddCert(c)
		}
	}
	_, err := s.signer.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: pool,
		CurrentTime:   createdOn,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// decodeEvidence returns the PKCS#7 bytes of an IMDS answer or of its
// base64 "signature" field. Whitespace inside the base64 is ignored.
func decodeEvidence(doc string) ([]byte, error) {
	if len(doc) > MaxEvidenceBytes {
		return nil, fmt.Errorf("evidence is %d bytes, more than %d", len(doc), MaxEvidenceBytes)
	}
	doc = strings.TrimSpace(doc)
	if doc == "" {
		return nil, errors.New("evidence is empty")
	}
	if strings.HasPrefix(doc, "{") {
		var answer struct {
			Encoding  string `json:"encoding"`
			Signature string `json:"signature"`
		}
		if err := json.Unmarshal([]byte(doc), &answer); err != nil {
			return nil, fmt.Errorf("IMDS answer is not JSON: %w", err)
		}
		if answer.Encoding != "" && !strings.EqualFold(answer.Encoding, "pkcs7") {
			return nil, fmt.Errorf("IMDS answer encoding is %q, not pkcs7", answer.Encoding)
		}
		if answer.Signature == "" {
			return nil, errors.New(`IMDS answer has no "signature"`)
		}
		doc = answer.Signature
	}
	b64 := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, doc)
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("PKCS#7 is not base64: %w", err)
	}
	if len(der) == 0 || !bytes.HasPrefix(der, []byte{0x30}) {
		return nil, errors.New("PKCS#7 does not start with an ASN.1 SEQUENCE")
	}
	return der, nil
}

func subscriptionAllowed(sub string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if sub != "" && strings.EqualFold(sub, a) {
			return true
		}
	}
	return false
}
