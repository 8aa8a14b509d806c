package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.step.sm/crypto/x509util"
)

// oidSubjectAltName is id-ce-subjectAltName (RFC 5280 §4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Config holds what an Issuer needs. Intermediate and Signer are required.
type Config struct {
	// Intermediate is the online CA certificate that signs worker
	// certificates.
	Intermediate *x509.Certificate
	// Signer holds the intermediate's private key (see LoadSigner).
	Signer crypto.Signer
	// CRLBaseURL, when set, gives every certificate a CRL Distribution
	// Point (RFC 5280 §4.2.1.13) naming its shard's CRL:
	// CRLShardURL(CRLBaseURL, CRLShard(serial, CRLShards)). Empty means
	// no CDP.
	CRLBaseURL string
	// CRLShards is how many CRLs the serials are spread over; 0 means 1.
	CRLShards int
	// OCSPURLs go into the AIA id-ad-ocsp entries (RFC 5280 §4.2.2.1).
	OCSPURLs []string
	// IssuerURLs go into the AIA id-ad-caIssuers entries; each must serve
	// the intermediate as DER (RFC 5280 §4.2.2.1).
	IssuerURLs []string
	// EnrollmentOID identifies the enrollment extension; nil means
	// DefaultEnrollmentOID.
	EnrollmentOID asn1.ObjectIdentifier
	// Backdate is subtracted from notBefore to absorb clock skew; 0 means
	// one minute.
	Backdate time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Rand is the source of serial numbers; nil means crypto/rand.
	Rand io.Reader
}

// Issuer signs worker and server certificates with the intermediate.
type Issuer struct {
	cfg Config
}

// New checks cfg and returns an Issuer: the intermediate must be a CA
// allowed to sign certificates, and Signer's public key must match it.
func New(cfg Config) (*Issuer, error) {
	if cfg.Intermediate == nil || cfg.Signer == nil {
		return nil, fmt.Errorf("%w: intermediate certificate and signer are required", ErrIntermediate)
	}
	if !cfg.Intermediate.IsCA || cfg.Intermediate.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%w: %s is not a CA certificate with keyCertSign", ErrIntermediate, cfg.Intermediate.Subject)
	}
	if err := matchKey(cfg.Intermediate.PublicKey, cfg.Signer.Public()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIntermediate, err)
	}
	if cfg.CRLShards < 0 || cfg.CRLShards > MaxCRLShards {
		return nil, fmt.Errorf("ca: CRL shards must be 1 to %d, got %d", MaxCRLShards, cfg.CRLShards)
	}
	if cfg.CRLShards == 0 {
		cfg.CRLShards = 1
	}
	crl := []string{}
	if cfg.CRLBaseURL != "" {
		if strings.HasSuffix(cfg.CRLBaseURL, "/") {
			return nil, fmt.Errorf("ca: CRL base URL %q must not end in /", cfg.CRLBaseURL)
		}
		crl = append(crl, cfg.CRLBaseURL)
	}
	for _, list := range [][]string{crl, cfg.OCSPURLs, cfg.IssuerURLs} {
		for _, u := range list {
			if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, fmt.Errorf("ca: distribution URL %q must be an absolute http(s) URL", u)
			}
		}
	}
	if cfg.EnrollmentOID == nil {
		cfg.EnrollmentOID = DefaultEnrollmentOID
	}
	if cfg.Backdate == 0 {
		cfg.Backdate = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Issuer{cfg: cfg}, nil
}

// Intermediate returns the signing CA certificate.
func (i *Issuer) Intermediate() *x509.Certificate { return i.cfg.Intermediate }

// EnrollmentOID returns the OID of the enrollment extension this issuer writes.
func (i *Issuer) EnrollmentOID() asn1.ObjectIdentifier { return i.cfg.EnrollmentOID }

// IssueRequest is one worker certificate to sign.
type IssueRequest struct {
	// CSR is the worker's request; only its public key is used, after its
	// signature has been checked.
	CSR *x509.CertificateRequest
	// Profile is the pool's profile.
	Profile *Profile
	// Identity is the verified identity; it must name Profile's pool.
	Identity Identity
}

// CheckCSR verifies the CSR's self-signature (proof of possession) and
// that its key is one the profile accepts.
func CheckCSR(csr *x509.CertificateRequest, p *Profile) error {
	if csr == nil {
		return fmt.Errorf("%w: missing", ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	return p.CheckKey(csr.PublicKey)
}

// Issue checks the request, renders the pool's template, fixes the fields
// the CA owns, signs, and checks what it signed. The result is not yet
// recorded anywhere: the caller must write it to the ledger before
// returning it.
func (i *Issuer) Issue(req IssueRequest) (*x509.Certificate, error) {
	if req.Profile == nil {
		return nil, fmt.Errorf("%w: no profile", ErrProfile)
	}
	if req.Identity.Pool != req.Profile.Name() {
		return nil, fmt.Errorf("%w: identity pool %q is not profile %q", ErrProfile, req.Identity.Pool, req.Profile.Name())
	}
	if err := CheckCSR(req.CSR, req.Profile); err != nil {
		return nil, err
	}
	sid, err := req.Identity.SPIFFEID()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProfile, err)
	}
	tmpl, err := req.Profile.render(req.CSR, req.Identity, sid.String())
	if err != nil {
		return nil, err
	}
	ext, err := Enrollment{Pool: req.Identity.Pool, Method: req.Identity.Method, EnrollmentID: req.Identity.EnrollmentID}.extension(i.cfg.EnrollmentOID)
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = slices.DeleteFunc(tmpl.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.Equal(i.cfg.EnrollmentOID) })
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	if err := checkWorkerTemplate(tmpl, req.Identity.WorkerID, sid.URL()); err != nil {
		return nil, err
	}
	return i.sign(tmpl, req.Profile.TTL(), false)
}

// ServerRequest is a TLS server certificate for workerca's own HTTPS
// listener.
type ServerRequest struct {
	// PublicKey is the server key's public half.
	PublicKey crypto.PublicKey
	// DNSNames and IPAddresses are the names clients dial.
	DNSNames    []string
	IPAddresses []net.IP
	// TTL is the lifetime; 0 means 24 hours.
	TTL time.Duration
}

// IssueServer signs a serverAuth certificate for the CA's own listener.
func (i *Issuer) IssueServer(req ServerRequest) (*x509.Certificate, error) {
	if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
		return nil, fmt.Errorf("%w: server certificate needs a DNS name or IP address", ErrProfile)
	}
	if _, err := KeyTypeOf(req.PublicKey); err != nil {
		return nil, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	cn := ""
	if len(req.DNSNames) > 0 {
		cn = req.DNSNames[0]
	} else {
		cn = req.IPAddresses[0].String()
	}
	tmpl := &x509.Certificate{
		PublicKey:   req.PublicKey,
		DNSNames:    req.DNSNames,
		IPAddresses: req.IPAddresses,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tmpl.Subject.CommonName = cn
	return i.sign(tmpl, ttl, false)
}

// MaxCRLShards bounds Config.CRLShards.
const MaxCRLShards = 4096

// CRLShard is the CRL shard of a serial: serial mod shards.
func CRLShard(serial *big.Int, shards int) int {
	if shards <= 1 {
		return 0
	}
	return int(new(big.Int).Mod(serial, big.NewInt(int64(shards))).Int64())
}

// CRLShardURL is the URL of a shard's CRL under base: <base>/crl/<n>.crl.
// The CRL's issuingDistributionPoint carries the same string.
func CRLShardURL(base string, shard int) string {
	return base + "/crl/" + strconv.Itoa(shard) + ".crl"
}

// CRLBaseURL returns the configured CRL base URL and shard count.
func (i *Issuer) CRLBaseURL() (string, int) { return i.cfg.CRLBaseURL, i.cfg.CRLShards }

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// ResponderRequest is a delegated OCSP responder certificate.
type ResponderRequest struct {
	// PublicKey is the responder key's public half.
	PublicKey crypto.PublicKey
	// TTL is the lifetime; 0 means 72 hours. Clients do not check a
	// responder certificate's revocation (ocsp-nocheck), so keep it short.
	TTL time.Duration
}

// IssueResponder signs a delegated OCSP responder certificate (RFC 6960
// §4.2.2.2): extKeyUsage OCSPSigning only, keyUsage digitalSignature
// only, id-pkix-ocsp-nocheck, no CDP or AIA.
func (i *Issuer) IssueResponder(req ResponderRequest) (*x509.Certificate, error) {
	if _, err := KeyTypeOf(req.PublicKey); err != nil {
		return nil, err
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = 72 * time.Hour
	}
	tmpl := &x509.Certificate{
		PublicKey:       req.PublicKey,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1.NullBytes}},
	}
	tmpl.Subject = pkix.Name{CommonName: "workerca OCSP responder", Organization: i.cfg.Intermediate.Subject.Organization}
	return i.sign(tmpl, ttl, true)
}

// sign sets the fields the CA owns, signs and re-parses. A noCheck
// certificate (the OCSP responder's) gets no CDP or AIA.
func (i *Issuer) sign(tmpl *x509.Certificate, ttl time.Duration, noCheck bool) (*x509.Certificate, error) {
	now := i.cfg.Clock().UTC().Truncate(time.Second)
	icert := i.cfg.Intermediate
	if !now.Before(icert.NotAfter) {
		return nil, fmt.Errorf("%w: expired at %s", ErrIntermediate, icert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := NewSerial(i.cfg.Rand)
	if err != nil {
		return nil, err
	}
	skid, err := x509util.GenerateSubjectKeyID(tmpl.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ca: subject key id: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-i.cfg.Backdate)
	if tmpl.NotBefore.Before(icert.NotBefore) {
		tmpl.NotBefore = icert.NotBefore
	}
	tmpl.NotAfter = now.Add(ttl)
	if tmpl.NotAfter.After(icert.NotAfter) {
		tmpl.NotAfter = icert.NotAfter
	}
	tmpl.SubjectKeyId = skid
	tmpl.AuthorityKeyId = nil // taken from the intermediate's SKI
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = false
	tmpl.MaxPathLen = 0
	tmpl.CRLDistributionPoints = nil
	if i.cfg.CRLBaseURL != "" && !noCheck {
		tmpl.CRLDistributionPoints = []string{CRLShardURL(i.cfg.CRLBaseURL, CRLShard(serial, i.cfg.CRLShards))}
	}
	tmpl.OCSPServer, tmpl.IssuingCertificateURL = nil, nil
	if !noCheck {
		tmpl.OCSPServer = i.cfg.OCSPURLs
		tmpl.IssuingCertificateURL = i.cfg.IssuerURLs
	}
	tmpl.SignatureAlgorithm = x509.UnknownSignatureAlgorithm
	// x509.CreateCertificate checks the signature it made before returning.
	der, err := x509.CreateCertificate(i.cfg.Rand, tmpl, icert, tmpl.PublicKey, i.cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: re-parse signed certificate: %w", err)
	}
	return cert, nil
}

// checkWorkerTemplate enforces the worker profile of DESIGN.md "Identity"
// on whatever the pool's template rendered.
func checkWorkerTemplate(c *x509.Certificate, workerID string, sid *url.URL) error {
	switch {
	case c.Subject.CommonName != workerID:
		return fmt.Errorf("%w: subject CN %q is not the worker ID %q", ErrProfile, c.Subject.CommonName, workerID)
	case len(c.URIs) != 1 || c.URIs[0].String() != sid.String():
		return fmt.Errorf("%w: the SPIFFE ID must be the only URI SAN", ErrProfile)
	case len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses) != 0:
		return fmt.Errorf("%w: DNS, IP and email SANs are not allowed in worker certificates", ErrProfile)
	case c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return fmt.Errorf("%w: keyUsage must include digitalSignature", ErrProfile)
	case c.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return fmt.Errorf("%w: keyUsage must not include keyCertSign or cRLSign", ErrProfile)
	case !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return fmt.Errorf("%w: extKeyUsage must include clientAuth", ErrProfile)
	case slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny):
		return fmt.Errorf("%w: serverAuth is only for pools that allow DNS SANs", ErrProfile)
	}
	for _, e := range c.ExtraExtensions {
		if e.Id.Equal(oidSubjectAltName) {
			return fmt.Errorf("%w: templates must not write a raw subjectAltName", ErrProfile)
		}
		if e.Critical {
			return fmt.Errorf("%w: template extension %s must not be critical", ErrProfile, e.Id)
		}
	}
	return nil
}

// NewSerial returns a positive serial number of 159 random bits in 20
// octets (RFC 5280 §4.1.2.2 allows up to 20; CA/B Forum asks for at least
// 64 random bits, workerca for at least 128). The first octet is never zero,
// so SerialHex always has 40 digits.
func NewSerial(r io.Reader) (*big.Int, error) {
	b := make([]byte, 20)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	b[0] &= 0x7f
	if b[0] == 0 {
		b[0] = 0x01
	}
	return new(big.Int).SetBytes(b), nil
}

// SerialHex formats a serial as DESIGN.md's stable form: lowercase hex of
// the serial's bytes, as `openssl x509 -serial` prints it (lowercased).
func SerialHex(n *big.Int) string {
	return hex.EncodeToString(n.Bytes())
}

// ParseSerial reads SerialHex's form, either case: an even number of hex
// digits, 1 to 20 octets, positive. Errors wrap ErrSerial. SerialHex of
// the result is the ledger key.
func ParseSerial(s string) (*big.Int, error) {
	if s == "" || len(s) > 40 || len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: %q", ErrSerial, s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrSerial, s)
	}
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 {
		return nil, fmt.Errorf("%w: %q is zero", ErrSerial, s)
	}
	return n, nil
}

// SPKISHA256 returns the lowercase hex SHA-256 of a certificate's
// SubjectPublicKeyInfo.
func SPKISHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

func matchKey(a, b crypto.PublicKey) error {
	ad, err := x509.MarshalPKIXPublicKey(a)
	if err != nil {
		return fmt.Errorf("marshal certificate key: %w", err)
	}
	bd, err := x509.MarshalPKIXPublicKey(b)
	if err != nil {
		return fmt.Errorf("marshal signer key: %w", err)
	}
	if !bytes.Equal(ad, bd) {
		return fmt.Errorf("signer key does not match the certificate")
	}
	return nil
}
