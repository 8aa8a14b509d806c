package verifier

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/revocation/status"
)

// Errors of package verifier. A rejection is a Result, never an error: an
// error means the verifier could not decide. Callers test with errors.Is.
var (
	// ErrConfig means a Config, or a setting a request needs (StatusKeys
	// for a receipt), is missing or wrong.
	ErrConfig = errors.New("verifier: invalid configuration")
	// ErrInvalidRequest means a request is malformed: a digest that is
	// not 64 lowercase hex digits, an instant in the future.
	ErrInvalidRequest = errors.New("verifier: invalid request")
	// ErrUnavailable means no trustworthy revocation status could be had:
	// the status server is unreachable or refused, its answer did not
	// verify, or no fresh CRL covers the certificate.
	ErrUnavailable = errors.New("verifier: revocation status unavailable")
	// ErrBadStatus means a status answer is not to be trusted: its JWS
	// does not verify with the status keys, its typ is not
	// status.MediaType, or it answers another serial or
	// instant. Errors wrapping it wrap ErrUnavailable too.
	ErrBadStatus = errors.New("verifier: status answer not trusted")
)

// The codes of a Result: stable snake_case, for scripts and logs.
const (
	// CodeOK: accepted.
	CodeOK = "ok"
	// CodeMalformed: the chain, signature or receipt does not parse.
	CodeMalformed = "malformed"
	// CodeBadSignature: the artifact signature does not verify with its
	// x5c leaf key.
	CodeBadSignature = "bad_signature"
	// CodeDigestMismatch: the artifact is not the one signed.
	CodeDigestMismatch = "digest_mismatch"
	// CodeUntrustedChain: the chain does not lead to a root of the bundle.
	CodeUntrustedChain = "untrusted_chain"
	// CodeExpired: the certificate was not valid at the instant checked
	// (expired, or not yet valid).
	CodeExpired = "expired"
	// CodeSPIFFEIDInvalid: the leaf has not exactly one URI SAN of the
	// form spiffe://<trust-domain>/worker/<pool>/<worker-id>.
	CodeSPIFFEIDInvalid = "spiffe_id_invalid"
	// CodeTrustDomainMismatch: the SPIFFE ID is of another trust domain.
	CodeTrustDomainMismatch = "trust_domain_mismatch"
	// CodePoolNotAllowed: the worker's pool is not in AllowPools.
	CodePoolNotAllowed = "pool_not_allowed"
	// CodeRevoked: the certificate was revoked at the instant checked.
	CodeRevoked = "revoked"
	// CodeKeyCompromised: the certificate was revoked for keyCompromise
	// with an invalidity date at or before the instant checked, or with
	// none (compromised at an unknown time).
	CodeKeyCompromised = "key_compromised"
	// CodeStatusUnknown: the CA does not know the certificate (never
	// issued by it, or pruned from its history).
	CodeStatusUnknown = "status_unknown"
	// CodeReceiptUntrusted: the receipt is not signed by a status key.
	CodeReceiptUntrusted = "receipt_untrusted"
	// CodeReceiptMismatch: the receipt is for another artifact,
	// certificate or signature.
	CodeReceiptMismatch = "receipt_mismatch"
	// CodeRegistrationExpired: the receipt's expires_at has passed; the
	// CA may have pruned the certificate's history.
	CodeRegistrationExpired = "registration_expired"
)

// Where Result.At comes from.
const (
	// AtNow: the verifier's clock.
	AtNow = "now"
	// AtReceipt: the registered_at of a CA receipt.
	AtReceipt = "receipt"
	// AtGiven: CertRequest.At (the CLI's --at).
	AtGiven = "given"
)

// Result.Revocation values.
const (
	// RevocationGood: not revoked at the instant checked.
	RevocationGood = "good"
	// RevocationRevoked: revoked at the instant checked (RevokedAt,
	// Reason and InvalidityDate say how).
	RevocationRevoked = "revoked"
	// RevocationUnknown: the CA does not know the certificate.
	RevocationUnknown = "unknown"
	// RevocationNotChecked: not looked up, because an earlier check
	// rejected, or Config.NoRevocationCheck.
	RevocationNotChecked = "not_checked"
)

// MaxClockSkew is how far the clocks of the verifier and the CA may
// differ: an instant up to MaxClockSkew ahead of the verifier's clock is
// taken as now, and a status answer asked for "now" must be about an
// instant within MaxClockSkew of it.
const MaxClockSkew = 5 * time.Minute

// Config is what a Verifier trusts and where it learns of revocations.
type Config struct {
	// Roots is the trust bundle (the CA's root.crt, GET /v1/bundle).
	// Required.
	Roots *x509.CertPool
	// Intermediates are extra intermediates to build chains with, besides
	// those the chain or x5c carries (GET /v1/intermediates).
	Intermediates []*x509.Certificate
	// StatusKeys verifies receipts: the JWKS the CA serves at
	// GET /v1/status/keys, pinned. Required to check a receipt. Give the
	// same set to NewHTTPStatus.
	StatusKeys jose.JSONWebKeySet
	// Status answers the revocation status of a serial at an instant
	// (NewHTTPStatus). Exactly one of Status, CRLs and NoRevocationCheck.
	Status StatusSource
	// CRLs are the intermediate's CRLs (the shards' GET /crl/<n>.crl);
	// the newest one signed by the leaf's issuer whose scope covers the
	// leaf is used. See the package documentation for their limits.
	CRLs []*x509.RevocationList
	// NoRevocationCheck accepts certificates without knowing whether they
	// were revoked; every Result then says Revocation "not_checked". It
	// must be asked for explicitly.
	NoRevocationCheck bool
	// AllowPools, when not empty, are the only pools accepted.
	AllowPools []string
	// TrustDomain, when set, is the only SPIFFE trust domain accepted
	// (e.g. workers.example.com).
	TrustDomain string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// StatusSource answers the signed JSON status of a certificate, verified.
// It is what a Verifier needs from the CA's status API (NewHTTPStatus),
// or from anything else that can vouch for the same answers.
type StatusSource interface {
	// Status returns the status of serial (lowercase hex) at the instant
	// at, in whole seconds; the zero time means now, as the source's
	// clock sees it. The answer's signature has been checked. An error
	// means no answer.
	Status(ctx context.Context, serial string, at time.Time) (*status.Answer, error)
}

// Verifier checks worker certificates and artifact signatures.
type Verifier struct {
	cfg   Config
	td    spiffeid.TrustDomain
	pools map[string]bool
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if cfg.Roots == nil {
		return nil, fmt.Errorf("%w: Roots (the trust bundle) is required", ErrConfig)
	}
	sources := 0
	for _, set := range []bool{cfg.Status != nil, len(cfg.CRLs) > 0, cfg.NoRevocationCheck} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("%w: give exactly one of Status, CRLs and NoRevocationCheck", ErrConfig)
	}
	for i, c := range cfg.CRLs {
		if c == nil {
			return nil, fmt.Errorf("%w: CRLs[%d] is nil", ErrConfig, i)
		}
	}
	for i, c := range cfg.Intermediates {
		if c == nil {
			return nil, fmt.Errorf("%w: Intermediates[%d] is nil", ErrConfig, i)
		}
	}
	if err := checkKeys(cfg.StatusKeys, false); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}
	if cfg.TrustDomain != "" {
		td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
		if err != nil {
			return nil, fmt.Errorf("%w: TrustDomain %q: %v", ErrConfig, cfg.TrustDomain, err)
		}
		v.td = td
	}
	if len(cfg.AllowPools) > 0 {
		v.pools = map[string]bool{}
		for _, p := range cfg.AllowPools {
			if p == "" {
				return nil, fmt.Errorf("%w: AllowPools holds an empty pool", ErrConfig)
			}
			v.pools[p] = true
		}
	}
	if v.cfg.Clock == nil {
		v.cfg.Clock = time.Now
	}
	return v, nil
}

// checkKeys checks that every key of a status JWKS is public and of a key
// type workerca signs with; required asks for at least one.
func checkKeys(keys jose.JSONWebKeySet, required bool) error {
	if required && len(keys.Keys) == 0 {
		return fmt.Errorf("%w: no status keys", ErrConfig)
	}
	for i, k := range keys.Keys {
		if !k.Valid() || !k.IsPublic() {
			return fmt.Errorf("%w: status key %d (kid %q) is not a valid public key", ErrConfig, i, k.KeyID)
		}
		if _, err := ca.JOSEAlgorithm(k.Key); err != nil {
			return fmt.Errorf("%w: status key %d (kid %q): %v", ErrConfig, i, k.KeyID, err)
		}
	}
	return nil
}

// CertRequest is one certificate to check.
type CertRequest struct {
	// Chain is the worker certificate followed by any intermediates (a
	// TLS peer's chain, a PEM file's certificates). The root may be left
	// out.
	Chain []*x509.Certificate
	// At is the instant to check at; zero means now. It is truncated to
	// the second, as status answers, CRLs and receipts carry times, and
	// may not be later than now (plus MaxClockSkew).
	At time.Time
}

// Result is a verdict. A rejection is a Result with Accepted false and a
// Code saying why; the fields describe what was learned before it.
type Result struct {
	// Accepted is true only when every check passed.
	Accepted bool `json:"accepted"`
	// Code is CodeOK or why the verifier rejected (Code* constants).
	Code string `json:"code"`
	// Message says the same for people.
	Message string `json:"message"`
	// Serial is the worker certificate's serial (lowercase hex).
	Serial string `json:"serial,omitempty"`
	// SPIFFEID, Pool and WorkerID are the worker's identity, once checked.
	SPIFFEID string `json:"spiffe_id,omitempty"`
	Pool     string `json:"pool,omitempty"`
	WorkerID string `json:"worker_id,omitempty"`
	// At is the instant checked; AtSource says where it came from (AtNow,
	// AtReceipt, AtGiven).
	At       time.Time `json:"at"`
	AtSource string    `json:"at_source"`
	// Revocation is the revocation status at At (Revocation* constants).
	Revocation string `json:"revocation"`
	// RevokedAt, Reason and InvalidityDate describe the revocation that
	// rejected the certificate.
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
	// SHA256 and Name are the artifact's, as signed.
	SHA256 string `json:"sha256,omitempty"`
	Name   string `json:"name,omitempty"`
	// RegisteredAt and RegistrationExpiresAt are the receipt's.
	RegisteredAt          *time.Time `json:"registered_at,omitempty"`
	RegistrationExpiresAt *time.Time `json:"registration_expires_at,omitempty"`
}

func (r *Result) reject(code, format string, args ...any) *Result {
	r.Accepted, r.Code, r.Message = false, code, fmt.Sprintf(format, args...)
	return r
}

// now is the clock, in whole seconds.
func (v *Verifier) now() time.Time { return v.cfg.Clock().UTC().Truncate(time.Second) }

// Certificate checks a worker certificate chain at req.At: the chain to
// Roots, the SPIFFE ID, TrustDomain and AllowPools, and the revocation
// status.
func (v *Verifier) Certificate(ctx context.Context, req CertRequest) (*Result, error) {
	now := v.now()
	at, src := now, AtNow
	if !req.At.IsZero() {
		at, src = req.At.UTC().Truncate(time.Second), AtGiven
		if at.After(now.Add(MaxClockSkew)) {
			return nil, fmt.Errorf("%w: at %s is in the future", ErrInvalidRequest, at.Format(time.RFC3339))
		}
	}
	return v.certificate(ctx, req.Chain, instant{at: at, src: src, now: now})
}

// instant is the instant a check is for, where it came from, and the
// clock's now.
type instant struct {
	at, now time.Time
	src     string
}

// past reports whether the instant checked is before now.
func (i instant) past() bool { return i.at.Before(i.now) }

// certificate checks chain at the instant when.
func (v *Verifier) certificate(ctx context.Context, chain []*x509.Certificate, when instant) (*Result, error) {
	at := when.at
	r := &Result{At: at, AtSource: when.src, Revocation: RevocationNotChecked}
	if len(chain) == 0 || slices.Contains(chain, nil) {
		return r.reject(CodeMalformed, "no certificate to check"), nil
	}
	leaf := chain[0]
	r.Serial = ca.SerialHex(leaf.SerialNumber)

	inter := x509.NewCertPool()
	for _, c := range append(slices.Clone(chain[1:]), v.cfg.Intermediates...) {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.cfg.Roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return r.reject(CodeExpired, "a certificate of the chain was not valid at %s: %v", at.Format(time.RFC3339), err), nil
		}
		return r.reject(CodeUntrustedChain, "the chain does not verify to the trust bundle at %s: %v", at.Format(time.RFC3339), err), nil
	}
	// X509-SVID §4.3: a leaf is not a CA and has digitalSignature.
	if leaf.IsCA {
		return r.reject(CodeUntrustedChain, "the leaf is a CA certificate, not a worker's"), nil
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return r.reject(CodeUntrustedChain, "the leaf lacks the digitalSignature key usage"), nil
	}

	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return r.reject(CodeSPIFFEIDInvalid, "SPIFFE ID: %v", err), nil
	}
	segs := strings.Split(id.Path(), "/")
	if len(segs) != 4 || segs[1] != "worker" {
		return r.reject(CodeSPIFFEIDInvalid, "SPIFFE ID %s is not spiffe://<trust-domain>/worker/<pool>/<worker-id>", id), nil
	}
	r.SPIFFEID, r.Pool, r.WorkerID = id.String(), segs[2], segs[3]
	if !v.td.IsZero() && id.TrustDomain() != v.td {
		return r.reject(CodeTrustDomainMismatch, "SPIFFE ID %s is not in the trust domain %s", id, v.td), nil
	}
	if v.pools != nil && !v.pools[r.Pool] {
		return r.reject(CodePoolNotAllowed, "pool %q is not allowed (allowed: %s)", r.Pool, strings.Join(v.cfg.AllowPools, ", ")), nil
	}

	switch {
	case v.cfg.NoRevocationCheck:
		r.Accepted, r.Code, r.Message = true, CodeOK, "chain and identity verified; revocation NOT checked"
		return r, nil
	case v.cfg.Status != nil:
		return v.checkStatus(ctx, r, when)
	default:
		return v.checkCRL(r, chains, when)
	}
}

// accept marks r accepted after a good revocation status.
func (r *Result) accept(msg string) *Result {
	r.Accepted, r.Code, r.Revocation = true, CodeOK, RevocationGood
	r.Message = "chain, identity and revocation status verified"
	if msg != "" {
		r.Message += "; " + msg
	}
	return r
}

// revoked rejects r for a revocation in effect at r.At.
func (r *Result) revoked(revokedAt *time.Time, reason string, invalidity *time.Time) *Result {
	r.Revocation, r.RevokedAt, r.Reason, r.InvalidityDate = RevocationRevoked, utc(revokedAt), reason, utc(invalidity)
	if reason == status.KeyCompromise.String() {
		if invalidity == nil {
			return r.reject(CodeKeyCompromised, "revoked for keyCompromise at %s with no invalidity date: the key was compromised at an unknown time, so nothing it signed is trusted",
				fmtTime(revokedAt))
		}
		return r.reject(CodeKeyCompromised, "revoked for keyCompromise: the key was compromised since %s, at or before %s",
			fmtTime(invalidity), r.At.Format(time.RFC3339))
	}
	if reason == "" {
		reason = status.Unspecified.String()
	}
	return r.reject(CodeRevoked, "revoked at %s (%s)", fmtTime(revokedAt), reason)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
