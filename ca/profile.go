package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/url"
	"text/template"
	"time"

	"go.step.sm/crypto/x509util"
)

// DefaultTemplate renders a worker certificate as DESIGN.md "Identity"
// describes it: CN = worker ID, the SPIFFE ID as the only URI SAN,
// digitalSignature, clientAuth. The Issuer adds serial, validity, SKI/AKI,
// CDP, AIA, basic constraints and the enrollment extension itself, so a
// template cannot get those wrong.
//
// Templates see x509util's usual data (.Subject, .SANs, .Insecure.CR) and
// .Worker with the fields ID, Pool, SPIFFEID, TrustDomain, Method and
// EnrollmentID, all taken from the verified enrollment, never from the CSR.
const DefaultTemplate = `{
	"subject": {"commonName": {{ toJson .Worker.ID }}},
	"uris": [{{ toJson .Worker.SPIFFEID }}],
	"keyUsage": ["digitalSignature"],
	"extKeyUsage": ["clientAuth"]
}`

// MaxTTL is the longest lifetime any pool may give (DESIGN.md "Identity").
const MaxTTL = 7 * 24 * time.Hour

// DefaultTTL is a pool's certificate lifetime when its configuration sets none.
const DefaultTTL = 24 * time.Hour

// ProfileConfig describes one pool's certificate profile.
type ProfileConfig struct {
	// Name is the pool name; it becomes a SPIFFE ID path segment.
	Name string
	// TTL is the certificate lifetime; 0 means DefaultTTL. At most MaxTTL.
	TTL time.Duration
	// KeyTypes lists the accepted CSR key types; empty means DefaultKeyTypes.
	KeyTypes []KeyType
	// Template is x509util template text; empty means DefaultTemplate.
	Template string
}

// Profile is a checked, ready-to-use ProfileConfig. Its template is parsed
// once, at construction.
type Profile struct {
	name     string
	ttl      time.Duration
	keyTypes map[KeyType]bool
	tmpl     *template.Template
	// builtin is set for DefaultTemplate, which render builds directly:
	// the same fields, without executing the template and decoding its
	// JSON on every request.
	builtin bool
}

// NewProfile checks cfg and parses its template.
func NewProfile(cfg ProfileConfig) (*Profile, error) {
	if err := checkSegment(cfg.Name); err != nil {
		return nil, fmt.Errorf("ca: profile name: %w", err)
	}
	p := &Profile{name: cfg.Name, ttl: cfg.TTL, keyTypes: map[KeyType]bool{}}
	if p.ttl == 0 {
		p.ttl = DefaultTTL
	}
	if p.ttl < time.Minute || p.ttl > MaxTTL {
		return nil, fmt.Errorf("ca: profile %s: ttl %s outside [1m, %s]", cfg.Name, p.ttl, MaxTTL)
	}
	kts := cfg.KeyTypes
	if len(kts) == 0 {
		kts = DefaultKeyTypes
	}
	for _, kt := range kts {
		if _, err := ParseKeyType(string(kt)); err != nil {
			return nil, fmt.Errorf("ca: profile %s: %w", cfg.Name, err)
		}
		p.keyTypes[kt] = true
	}
	text := cfg.Template
	if text == "" {
		text = DefaultTemplate
	}
	tmpl, err := template.New(cfg.Name).Funcs(x509util.GetFuncMap()).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("ca: profile %s: parse template: %w", cfg.Name, err)
	}
	p.tmpl = tmpl
	p.builtin = text == DefaultTemplate
	return p, nil
}

// Name returns the pool name.
func (p *Profile) Name() string { return p.name }

// TTL returns the certificate lifetime.
func (p *Profile) TTL() time.Duration { return p.ttl }

// CheckKey returns an error wrapping ErrKeyNotAllowed unless pub is of a type
// this profile accepts.
func (p *Profile) CheckKey(pub crypto.PublicKey) error {
	kt, err := KeyTypeOf(pub)
	if err != nil {
		return err
	}
	if !p.keyTypes[kt] {
		return fmt.Errorf("%w: %s not accepted by pool %s", ErrKeyNotAllowed, kt, p.name)
	}
	return nil
}

// render executes the template for one request and returns the unsigned
// certificate fields it produced.
func (p *Profile) render(csr *x509.CertificateRequest, id Identity, spiffeID string) (*x509.Certificate, error) {
	if p.builtin {
		return renderDefault(csr, id, spiffeID)
	}
	return p.execute(csr, id, spiffeID)
}

// renderDefault is what DefaultTemplate renders (TestRenderDefault
// compares the two).
func renderDefault(csr *x509.CertificateRequest, id Identity, spiffeID string) (*x509.Certificate, error) {
	u, err := url.Parse(spiffeID)
	if err != nil {
		return nil, fmt.Errorf("%w: SPIFFE ID %q: %v", ErrProfile, spiffeID, err)
	}
	return &x509.Certificate{
		PublicKey:          csr.PublicKey,
		PublicKeyAlgorithm: csr.PublicKeyAlgorithm,
		Subject:            pkix.Name{CommonName: id.WorkerID},
		URIs:               []*url.URL{u},
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, nil
}

// execute runs the pool's template and decodes its JSON.
func (p *Profile) execute(csr *x509.CertificateRequest, id Identity, spiffeID string) (*x509.Certificate, error) {
	data := x509util.NewTemplateData()
	data.SetCommonName(id.WorkerID)
	data.SetSubjectAlternativeNames(x509util.SubjectAlternativeName{Type: x509util.URIType, Value: spiffeID})
	data.SetCertificateRequest(csr)
	data.Set("Worker", map[string]string{
		"ID":           id.WorkerID,
		"Pool":         id.Pool,
		"SPIFFEID":     spiffeID,
		"TrustDomain":  id.TrustDomain,
		"Method":       id.Method,
		"EnrollmentID": id.EnrollmentID,
	})
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("%w: pool %s: execute template: %v", ErrProfile, p.name, err)
	}
	var c x509util.Certificate
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: pool %s: template output: %v", ErrProfile, p.name, err)
	}
	c.PublicKey = csr.PublicKey
	c.PublicKeyAlgorithm = csr.PublicKeyAlgorithm
	return c.GetCertificate(), nil
}
