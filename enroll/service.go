package enroll

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/store"
)

// DefaultRetentionBuffer is how long a ledger row outlives its
// certificate's notAfter when no artifact needs it longer (DESIGN.md).
const DefaultRetentionBuffer = 72 * time.Hour

// Ledger is what the registration authority needs from storage.
type Ledger interface {
	// RecordIssuance durably records a certificate, consuming a token
	// and enforcing the pool cap in the same transaction.
	RecordIssuance(ctx context.Context, r store.Issuance) error
	// Token reads an enrollment token by ID.
	Token(ctx context.Context, id string) (*store.EnrollmentToken, error)
	// CreateToken stores a token with its audit event.
	CreateToken(ctx context.Context, t *store.EnrollmentToken, audit store.AuditEvent) error
	challenges
	certificates
	tpmLedger
}

// Observer receives one call per issuance attempt that reached a pool:
// outcome is "issued" or the refusal's error code.
type Observer interface {
	Issuance(pool, method, outcome string, d time.Duration)
}

// Config wires a Service.
type Config struct {
	// Issuer signs certificates. Required.
	Issuer *ca.Issuer
	// Ledger records them. Required.
	Ledger Ledger
	// TrustDomain is the SPIFFE trust domain. Required.
	TrustDomain string
	// Pools are the configured pools. At least one.
	Pools []Pool
	// RetentionBuffer is added to notAfter for retain_until; 0 means
	// DefaultRetentionBuffer.
	RetentionBuffer time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Rand is the source of token secrets; nil means crypto/rand.
	Rand io.Reader
	// Logger receives refusals in detail; nil means discard.
	Logger *slog.Logger
	// Observer receives issuance outcomes for metrics; nil means none.
	Observer Observer
	// Attestors verify the evidence of POST /v1/enroll, one per method.
	// Method "token" is built in.
	Attestors []Attestor
	// TPM, when set, enables the two-round method tpm.
	TPM *TPMConfig
}

// Service is the registration authority.
type Service struct {
	cfg       Config
	pools     map[string]Pool
	attestors map[string]Attestor
	// limits are the pools' enrollment buckets; nil for an unlimited pool.
	limits map[string]*ratelimit.Bucket
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Issuer == nil || cfg.Ledger == nil {
		return nil, errors.New("enroll: issuer and ledger are required")
	}
	if cfg.TrustDomain == "" {
		return nil, errors.New("enroll: trust domain is required")
	}
	if len(cfg.Pools) == 0 {
		return nil, errors.New("enroll: at least one pool is required")
	}
	s := &Service{cfg: cfg, pools: map[string]Pool{}, attestors: map[string]Attestor{}, limits: map[string]*ratelimit.Bucket{}}
	s.attestors[MethodToken] = tokenAttestor{s}
	if cfg.TPM != nil {
		if err := cfg.TPM.check(); err != nil {
			return nil, err
		}
	}
	for _, a := range cfg.Attestors {
		if _, dup := s.attestors[a.Method()]; dup {
			return nil, fmt.Errorf("enroll: two attestors for method %s", a.Method())
		}
		s.attestors[a.Method()] = a
	}
	for _, p := range cfg.Pools {
		if err := checkPool(p, s.Methods()); err != nil {
			return nil, err
		}
		if _, dup := s.pools[p.Name()]; dup {
			return nil, fmt.Errorf("enroll: pool %s defined twice", p.Name())
		}
		s.pools[p.Name()] = p
		b, err := ratelimit.NewBucket(p.RateLimit)
		if err != nil {
			return nil, fmt.Errorf("enroll: pool %s: %w", p.Name(), err)
		}
		s.limits[p.Name()] = b
	}
	if cfg.TPM != nil {
		for _, p := range cfg.TPM.Pools {
			if pool, ok := s.pools[p.Pool]; !ok || !pool.allows(MethodTPM) {
				return nil, fmt.Errorf("enroll: tpm: pool %s is not a pool that lists method %s", p.Pool, MethodTPM)
			}
		}
	}
	if s.cfg.RetentionBuffer == 0 {
		s.cfg.RetentionBuffer = DefaultRetentionBuffer
	}
	if s.cfg.Clock == nil {
		s.cfg.Clock = time.Now
	}
	if s.cfg.Rand == nil {
		s.cfg.Rand = rand.Reader
	}
	if s.cfg.Logger == nil {
		s.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Pool returns the named pool.
func (s *Service) Pool(name string) (Pool, error) {
	p, ok := s.pools[name]
	if !ok {
		return Pool{}, fmt.Errorf("%w: %q", ErrUnknownPool, name)
	}
	return p, nil
}

// TrustDomain is the SPIFFE trust domain of every worker ID this
// service issues.
func (s *Service) TrustDomain() string { return s.cfg.TrustDomain }

// crlShard is the CRL shard the certificate's CDP names.
func (s *Service) crlShard(cert *x509.Certificate) *int {
	_, n := s.cfg.Issuer.CRLBaseURL()
	shard := ca.CRLShard(cert.SerialNumber, n)
	return &shard
}

// issueLimited runs issue under the pool's enrollment bucket: a token is
// taken first and given back when issue fails, so only certificates
// issued count. Replayed, refused or malformed enrollments cannot spend
// a pool's budget.
func (s *Service) issueLimited(pool, method string, start time.Time, issue func() (*Result, error)) (*Result, error) {
	wait, undo := s.limits[pool].Reserve(s.cfg.Clock())
	if wait > 0 {
		err := &RateLimitError{Pool: pool, RetryAfter: wait}
		s.observe(pool, method, err, start)
		return nil, err
	}
	res, err := issue()
	if err != nil {
		undo(s.cfg.Clock())
	}
	return res, err
}

// Result is an issued and recorded certificate.
type Result struct {
	// Certificate is the worker certificate.
	Certificate *x509.Certificate
	// Chain is the certificate followed by the intermediate.
	Chain []*x509.Certificate
	// Serial is the ledger key (ca.SerialHex).
	Serial string
	// SPIFFEID is the certificate's URI SAN.
	SPIFFEID string
}

// Request is one issuance after an attestor has verified the evidence.
type Request struct {
	// CSR is the worker's request, PEM or DER.
	CSR []byte
	// Identity is the verified identity.
	Identity ca.Identity
	// AttestationSubject names what was attested, for replay protection
	// and revocation (e.g. "token:<id>").
	AttestationSubject string
	// Evidence summarizes the evidence for the ledger (JSON-encoded).
	Evidence any
	// TokenID, when set, is consumed atomically with the ledger write.
	TokenID string
	// NonceHash, when set, is the challenge consumed with the ledger write.
	NonceHash string
	// UseKeys are single-use evidence keys recorded with the ledger write.
	UseKeys []string
	// ExclusiveSubject refuses issuance while AttestationSubject holds a
	// live certificate.
	ExclusiveSubject bool
	// AttestedAt is when the identity was last attested; zero means now.
	// A renewal carries its parent's.
	AttestedAt time.Time
	// ParentSerial links a renewal to the certificate it renews.
	ParentSerial string
	// Actor names who asked, for the audit log.
	Actor string
}

// Issue signs and records one certificate. It is the single path every
// enrollment method ends in.
func (s *Service) Issue(ctx context.Context, req Request) (res *Result, err error) {
	start := s.cfg.Clock()
	pool, err := s.Pool(req.Identity.Pool)
	if err != nil {
		return nil, err
	}
	defer func() { s.observe(pool.Name(), req.Identity.Method, err, start) }()
	if !pool.allows(req.Identity.Method) {
		return nil, fmt.Errorf("%w: pool %s does not accept %s", ErrMethodNotAllowed, pool.Name(), req.Identity.Method)
	}
	req.Identity.TrustDomain = s.cfg.TrustDomain
	csr, err := ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	cert, err := s.cfg.Issuer.Issue(ca.IssueRequest{CSR: csr, Profile: pool.Profile, Identity: req.Identity})
	if err != nil {
		return nil, err
	}
	evidence, err := json.Marshal(req.Evidence)
	if err != nil {
		return nil, fmt.Errorf("enroll: encode evidence: %w", err)
	}
	serial := ca.SerialHex(cert.SerialNumber)
	sid := cert.URIs[0].String()
	now := s.cfg.Clock().UTC()
	detail, _ := json.Marshal(map[string]string{"pool": pool.Name(), "worker_id": req.Identity.WorkerID, "method": req.Identity.Method, "spiffe_id": sid})
	row := &store.Certificate{
		Serial:             serial,
		WorkerID:           req.Identity.WorkerID,
		Pool:               pool.Name(),
		SPIFFEID:           sid,
		SPKISHA256:         ca.SPKISHA256(cert),
		NotBefore:          cert.NotBefore,
		NotAfter:           cert.NotAfter,
		Method:             req.Identity.Method,
		EnrollmentID:       req.Identity.EnrollmentID,
		AttestationSubject: req.AttestationSubject,
		Evidence:           string(evidence),
		ParentSerial:       req.ParentSerial,
		DER:                cert.Raw,
		IssuedAt:           now,
		RetainUntil:        cert.NotAfter.Add(s.cfg.RetentionBuffer),
		CRLShard:           s.crlShard(cert),
		AttestedAt:         req.AttestedAt,
	}
	err = s.cfg.Ledger.RecordIssuance(ctx, store.Issuance{
		Certificate:      row,
		TokenID:          req.TokenID,
		NonceHash:        req.NonceHash,
		UseKeys:          req.UseKeys,
		ExclusiveSubject: req.ExclusiveSubject,
		MaxActiveWorkers: pool.MaxActiveWorkers,
		Now:              now,
		Audit:            store.AuditEvent{At: now, Actor: req.Actor, Action: "certificate.issued", Target: serial, Detail: string(detail)},
	})
	if err != nil {
		return nil, ledgerError(err)
	}
	s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "certificate issued",
		slog.String("serial", serial), slog.String("spiffe_id", sid), slog.String("method", req.Identity.Method),
		slog.Time("not_after", cert.NotAfter))
	return &Result{Certificate: cert, Chain: []*x509.Certificate{cert, s.cfg.Issuer.Intermediate()}, Serial: serial, SPIFFEID: sid}, nil
}

// ledgerError turns a store error into the RA's vocabulary. Anything the
// store does not name is an unavailable ledger: fail closed.
func ledgerError(err error) error {
	switch {
	case errors.Is(err, store.ErrTokenUsed):
		return fmt.Errorf("%w (%v)", ErrTokenUsed, err)
	case errors.Is(err, store.ErrTokenExpired):
		return fmt.Errorf("%w (%v)", ErrTokenExpired, err)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (%v)", ErrTokenInvalid, err)
	case errors.Is(err, store.ErrPoolFull):
		return fmt.Errorf("%w (%v)", ErrPoolFull, err)
	case errors.Is(err, store.ErrReplay):
		return fmt.Errorf("%w (%v)", ErrReplay, err)
	case errors.Is(err, store.ErrChallengeUnknown):
		return fmt.Errorf("%w (%v)", ErrNonceInvalid, err)
	case errors.Is(err, store.ErrChallengeUsed):
		return fmt.Errorf("%w (%v)", ErrNonceUsed, err)
	case errors.Is(err, store.ErrChallengeExpired):
		return fmt.Errorf("%w (%v)", ErrNonceExpired, err)
	}
	return fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
}

func (s *Service) observe(pool, method string, err error, start time.Time) {
	if s.cfg.Observer == nil {
		return
	}
	s.cfg.Observer.Issuance(pool, method, Outcome(err), s.cfg.Clock().Sub(start))
}

// Outcome names an issuance result for metrics and logs: "issued", or a
// short name of the refusal.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "issued"
	case errors.Is(err, ca.ErrBadCSR):
		return "bad_csr"
	case errors.Is(err, ca.ErrKeyNotAllowed):
		return "key_not_allowed"
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenExpired), errors.Is(err, ErrTokenUsed):
		return "token_refused"
	case errors.Is(err, ErrMethodNotAllowed):
		return "method_not_allowed"
	case errors.Is(err, ErrPoolFull):
		return "pool_full"
	case errors.Is(err, ErrLedgerUnavailable):
		return "ledger_unavailable"
	case errors.Is(err, ErrReplay):
		return "replay"
	case errors.Is(err, ErrNonceRequired), errors.Is(err, ErrNonceInvalid), errors.Is(err, ErrNonceExpired), errors.Is(err, ErrNonceUsed):
		return "nonce_refused"
	case errors.Is(err, ErrEvidenceMalformed), errors.Is(err, ErrAttestationInvalid), errors.Is(err, ErrAttestationExpired),
		errors.Is(err, ErrAttestationNotAllowed):
		return "attestation_refused"
	case errors.Is(err, ErrAttestorUnavailable):
		return "attestor_unavailable"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrEKUntrusted), errors.Is(err, ErrEKNotRegistered), errors.Is(err, ErrActivationFailed):
		return "attestation_refused"
	case errors.Is(err, ErrSessionInvalid), errors.Is(err, ErrSessionExpired), errors.Is(err, ErrSessionUsed):
		return "session_refused"
	}
	return "error"
}

// ParseCSR reads a PKCS#10 request in PEM ("CERTIFICATE REQUEST" or the
// legacy "NEW CERTIFICATE REQUEST") or DER. Errors wrap ca.ErrBadCSR.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	der := b
	if block, rest := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block %q is not a certificate request", ca.ErrBadCSR, block.Type)
		}
		if len(trimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: data after the PEM block", ca.ErrBadCSR)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ca.ErrBadCSR, err)
	}
	return csr, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
