package awsiid

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultMaxAge is Policy.MaxAge when it is zero.
const DefaultMaxAge = 10 * time.Minute

// ClockSkew is how far after the verifier's clock a pendingTime may lie
// before the document is refused as ErrFromFuture.
const ClockSkew = time.Minute

// Config configures a Verifier. The zero Config trusts the Shipped
// certificates and uses the real clock.
type Config struct {
	// Certificates are extra AWS signing certificates trusted in addition
	// to Shipped ones, for every region and every form. Use Regional to
	// restrict a certificate to one region or form. Each must hold an RSA
	// or DSA key.
	Certificates []*x509.Certificate
	// Regional are extra certificates restricted to a region and/or a
	// form (Certificate.Region, Certificate.Form; "" means any).
	Regional []Certificate
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Policy is what a caller (a pool) admits.
type Policy struct {
	// Accounts are the AWS account IDs admitted. An empty list admits no
	// account: there is no wildcard, because any AWS customer can obtain
	// a validly signed document.
	Accounts []string
	// Regions are the regions admitted; empty admits every region.
	Regions []string
	// MaxAge bounds the time since the document's pendingTime (when the
	// instance was launched or last started); 0 means DefaultMaxAge.
	MaxAge time.Duration
}

// Verifier verifies instance identity documents against AWS's signing
// certificates. It is safe for concurrent use.
type Verifier struct {
	certs []Certificate
	clock func() time.Time
}

// New returns a Verifier trusting Shipped() plus cfg's certificates.
func New(cfg Config) (*Verifier, error) {
	certs := Shipped()
	for i, c := range cfg.Certificates {
		if c == nil {
			return nil, fmt.Errorf("awsiid: Config.Certificates[%d] is nil", i)
		}
		if err := checkKey(c); err != nil {
			return nil, fmt.Errorf("awsiid: Config.Certificates[%d]: %w", i, err)
		}
		certs = append(certs, Certificate{Cert: c})
	}
	for i, c := range cfg.Regional {
		if c.Cert == nil {
			return nil, fmt.Errorf("awsiid: Config.Regional[%d] has no certificate", i)
		}
		switch c.Form {
		case "", FormSignature, FormRSA2048, FormPKCS7DSA:
		default:
			return nil, fmt.Errorf("awsiid: Config.Regional[%d]: unknown form %q", i, c.Form)
		}
		if err := checkKey(c.Cert); err != nil {
			return nil, fmt.Errorf("awsiid: Config.Regional[%d]: %w", i, err)
		}
		certs = append(certs, c)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Verifier{certs: certs, clock: clock}, nil
}

// Verify checks ev's signature against the trusted certificates for the
// document's region and the evidence's form, then applies p: account,
// region, and pendingTime no older than p.MaxAge and no more than
// ClockSkew in the future. Refusals wrap ErrMalformed, ErrSignature,
// ErrAccountNotAllowed, ErrRegionNotAllowed, ErrTooOld or ErrFromFuture;
// a negative p.MaxAge is an error of its own.
func (v *Verifier) Verify(ev Evidence, p Policy) (*Document, error) {
	maxAge := p.MaxAge
	switch {
	case maxAge < 0:
		return nil, errors.New("awsiid: Policy.MaxAge is negative")
	case maxAge == 0:
		maxAge = DefaultMaxAge
	}
	doc, err := v.verifySignature(ev)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(p.Accounts, doc.AccountID) {
		return nil, fmt.Errorf("%w: %q", ErrAccountNotAllowed, doc.AccountID)
	}
	if len(p.Regions) > 0 && !slices.Contains(p.Regions, doc.Region) {
		return nil, fmt.Errorf("%w: %q", ErrRegionNotAllowed, doc.Region)
	}
	now := v.clock()
	if doc.PendingTime.After(now.Add(ClockSkew)) {
		return nil, fmt.Errorf("%w: pendingTime %s is after %s", ErrFromFuture,
			doc.PendingTime.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if age := now.Sub(doc.PendingTime); age > maxAge {
		return nil, fmt.Errorf("%w: pendingTime %s is %s old, more than %s", ErrTooOld,
			doc.PendingTime.Format(time.RFC3339), age.Round(time.Second), maxAge)
	}
	return doc, nil
}

// verifySignature returns the document once a trusted certificate for its
// region and form has verified its signature.
func (v *Verifier) verifySignature(ev Evidence) (*Document, error) {
	hasSig := strings.TrimSpace(ev.Signature) != ""
	hasPKCS7 := strings.TrimSpace(ev.PKCS7) != ""
	switch {
	case hasSig && hasPKCS7:
		return nil, fmt.Errorf("%w: both signature and pkcs7; send one", ErrMalformed)
	case !hasSig && !hasPKCS7:
		return nil, fmt.Errorf("%w: neither signature nor pkcs7", ErrMalformed)
	case len(ev.Document) > maxDocumentBytes:
		return nil, fmt.Errorf("%w: document longer than %d bytes", ErrMalformed, maxDocumentBytes)
	}

	if hasSig {
		if ev.Document == "" {
			return nil, fmt.Errorf("%w: signature without document", ErrMalformed)
		}
		sig, err := decodeBase64(ev.Signature, 4096)
		if err != nil {
			return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
		}
		doc, err := parseDocument([]byte(ev.Document))
		if err != nil {
			return nil, err
		}
		doc.Form = FormSignature
		for _, c := range v.certs {
			if c.applies(doc.Region, FormSignature) && verifyRSASHA256(c.Cert.PublicKey, doc.Raw, sig) {
				return doc, nil
			}
		}
		return nil, fmt.Errorf("%w: no %s certificate for region %q verifies it", ErrSignature, FormSignature, doc.Region)
	}

	der, err := decodeBase64(ev.PKCS7, maxPKCS7Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs7: %v", ErrMalformed, err)
	}
	sd, err := parsePKCS7(der)
	if err != nil {
		return nil, err
	}
	if ev.Document != "" && !bytes.Equal([]byte(ev.Document), sd.content) {
		return nil, fmt.Errorf("%w: the pkcs7 content is not the document", ErrMalformed)
	}
	doc, err := parseDocument(sd.content)
	if err != nil {
		return nil, err
	}
	doc.Form = sd.form()
	for _, c := range v.certs {
		if c.applies(doc.Region, doc.Form) && sd.verify(c.Cert.PublicKey) {
			return doc, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s certificate for region %q verifies it", ErrSignature, doc.Form, doc.Region)
}
