package revocation

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/store"
)

// Errors of the revocation service. Callers test with errors.Is.
var (
	// ErrInvalidRequest means a revocation or status request is malformed.
	ErrInvalidRequest = errors.New("revocation: invalid request")
	// ErrNotFound means the serial is not in the ledger.
	ErrNotFound = errors.New("revocation: certificate not found")
	// ErrNotOwn means a worker tried to revoke a certificate not its own,
	// or for a reason workers may not give.
	ErrNotOwn = errors.New("revocation: workers may revoke only their own certificate")
	// ErrUnavailable means the ledger could not be read or written.
	ErrUnavailable = errors.New("revocation: ledger unavailable")
	// ErrNoCRL means the shard does not exist or has no CRL yet.
	ErrNoCRL = errors.New("revocation: no such CRL")
)

// Ledger is what revocation needs from storage. A Ledger several
// replicas share also implements SharedLedger.
type Ledger interface {
	Revoke(ctx context.Context, r store.Revocation) (*store.RevokeResult, error)
	Certificate(ctx context.Context, serial string) (*store.Certificate, error)
	EachRevoked(ctx context.Context, shard int, from time.Time, fn func(store.RevokedEntry) error) error
	SaveCRL(ctx context.Context, c *store.CRL) error
	CRLs(ctx context.Context) ([]store.CRL, error)
}

// Defaults of Config.
const (
	DefaultCRLValidity  = 24 * time.Hour
	DefaultCRLRebuild   = time.Hour
	DefaultOCSPValidity = 4 * time.Hour
	DefaultResponderTTL = 72 * time.Hour
)

// Config wires a Service.
type Config struct {
	// Ledger holds certificates, revocations and CRLs. Required.
	Ledger Ledger
	// Issuer is the intermediate whose certificates are published.
	// Required.
	Issuer *x509.Certificate
	// Signer is the intermediate's key; it signs the CRLs. Required.
	Signer crypto.Signer
	// CRLBaseURL is the base of the shards' URLs (ca.CRLShardURL); each
	// CRL's issuingDistributionPoint names its shard's URL. Required.
	CRLBaseURL string
	// CRLShards is the number of shards; 0 means 1.
	CRLShards int
	// CRLValidity is nextUpdate - thisUpdate; 0 means DefaultCRLValidity.
	CRLValidity time.Duration
	// CRLRebuild is how often every shard is rebuilt (a revocation
	// rebuilds its shards at once); 0 means DefaultCRLRebuild.
	CRLRebuild time.Duration
	// OCSPValidity is an OCSP answer's nextUpdate - thisUpdate; answers
	// are re-signed after half of it. 0 means DefaultOCSPValidity.
	OCSPValidity time.Duration
	// IssueResponder issues and records a delegated OCSP responder
	// certificate with a fresh key (enroll.Service.IssueResponder).
	// Required.
	IssueResponder func(ctx context.Context, ttl time.Duration) (*x509.Certificate, crypto.Signer, error)
	// ResponderTTL is the responder certificate's lifetime, renewed after
	// two thirds; 0 means DefaultResponderTTL.
	ResponderTTL time.Duration
	// StatusKey signs the JSON status answers. Required.
	StatusKey crypto.Signer
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives build failures; nil means discard.
	Logger *slog.Logger
}

// Service revokes certificates and publishes their status as CRLs, OCSP
// answers and signed JSON.
type Service struct {
	cfg    Config
	crls   *crlSet
	ocsp   *responder
	status *ca.JOSESigner
}

// New checks cfg and returns a Service. Call Start to build the CRLs and
// get the responder certificate before serving, then Run.
func New(cfg Config) (*Service, error) {
	if cfg.Ledger == nil || cfg.Issuer == nil || cfg.Signer == nil || cfg.IssueResponder == nil || cfg.StatusKey == nil {
		return nil, errors.New("revocation: ledger, issuer, signer, responder issuer and status key are required")
	}
	if cfg.CRLBaseURL == "" {
		return nil, errors.New("revocation: CRL base URL is required")
	}
	if cfg.CRLShards == 0 {
		cfg.CRLShards = 1
	}
	if cfg.CRLShards < 0 || cfg.CRLShards > ca.MaxCRLShards {
		return nil, fmt.Errorf("revocation: CRL shards must be 1 to %d", ca.MaxCRLShards)
	}
	if cfg.CRLValidity == 0 {
		cfg.CRLValidity = DefaultCRLValidity
	}
	if cfg.CRLRebuild == 0 {
		cfg.CRLRebuild = DefaultCRLRebuild
	}
	if cfg.OCSPValidity == 0 {
		cfg.OCSPValidity = DefaultOCSPValidity
	}
	if cfg.ResponderTTL == 0 {
		cfg.ResponderTTL = DefaultResponderTTL
	}
	switch {
	case cfg.CRLValidity < time.Minute || cfg.CRLRebuild < time.Second || cfg.CRLRebuild >= cfg.CRLValidity:
		return nil, errors.New("revocation: CRL validity must be at least a minute and longer than the rebuild period")
	case cfg.OCSPValidity < 2*time.Minute:
		return nil, errors.New("revocation: OCSP validity must be at least two minutes")
	case cfg.ResponderTTL < 2*cfg.OCSPValidity:
		return nil, errors.New("revocation: the responder certificate must live at least twice the OCSP validity")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	s.crls = newCRLSet(s)
	s.ocsp = newResponder(s)
	st, err := ca.NewJOSESigner(cfg.StatusKey, StatusMediaType)
	if err != nil {
		return nil, err
	}
	s.status = st
	return s, nil
}

// Request is one revocation. Exactly one of Serial, WorkerID, Pool and
// AttestationSubject is set.
type Request struct {
	// Serial is a ledger serial (lowercase hex; uppercase accepted).
	Serial string
	// WorkerID, Pool and AttestationSubject revoke every certificate of
	// that worker, pool or attested instance still valid at the
	// invalidity date (or now).
	WorkerID, Pool, AttestationSubject string
	// Reason is the CRLReason.
	Reason Reason
	// InvalidityDate is when the key is known or suspected to have been
	// compromised; it must not be in the future.
	InvalidityDate *time.Time
	// Actor names who asked, for the audit log.
	Actor string
}

// Result lists the certificates a revocation matched.
type Result struct {
	// Revoked are the serials this request revoked.
	Revoked []string
	// AlreadyRevoked are matched serials revoked before (unchanged).
	AlreadyRevoked []string
}

// Revoke records the revocation durably, then makes the next OCSP and
// status answer for each certificate say revoked and rebuilds the shards'
// CRLs in the background (within a second). It is idempotent. With
// several replicas on one PostgreSQL ledger, the others drop their cached
// answers when its notice reaches them, and the elected builder rebuilds
// the CRLs, which every replica then serves.
func (s *Service) Revoke(ctx context.Context, req Request) (*Result, error) {
	// Whole seconds, as OCSP, CRLs and status answers carry them: a
	// sub-second revocation time would make Status at "now" (truncated)
	// precede it.
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	if err := s.check(&req, now); err != nil {
		return nil, err
	}
	res, err := s.cfg.Ledger.Revoke(ctx, store.Revocation{
		Serial: req.Serial, WorkerID: req.WorkerID, Pool: req.Pool, AttestationSubject: req.AttestationSubject,
		Reason: int(req.Reason), InvalidityDate: req.InvalidityDate, At: now, Actor: req.Actor,
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, req.Serial)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out := &Result{Revoked: []string{}, AlreadyRevoked: []string{}}
	shards := map[int]bool{}
	for _, c := range res.Revoked {
		out.Revoked = append(out.Revoked, c.Serial)
		s.ocsp.forget(c.Serial)
		shards[s.shardOf(c.Serial, c.CRLShard)] = true
	}
	for _, c := range res.AlreadyRevoked {
		out.AlreadyRevoked = append(out.AlreadyRevoked, c.Serial)
		// A concurrent Revoke may have committed this row and not yet
		// dropped its cached answers: drop them before returning.
		s.ocsp.forget(c.Serial)
	}
	for shard := range shards {
		s.crls.touch(shard, now)
	}
	return out, nil
}

// RevokeOwn is a worker revoking its own certificate (POST /v1/revoke):
// serial must be the certificate it authenticated with, and the reason one
// of WorkerReasons.
func (s *Service) RevokeOwn(ctx context.Context, serial string, reason Reason) (*Result, error) {
	if !workerMay(reason) {
		return nil, fmt.Errorf("%w: reason %s (workers may give %v)", ErrNotOwn, reason, WorkerReasons)
	}
	return s.Revoke(ctx, Request{Serial: serial, Reason: reason, Actor: "worker:" + serial})
}

func (s *Service) check(req *Request, now time.Time) error {
	set := 0
	for _, v := range []string{req.Serial, req.WorkerID, req.Pool, req.AttestationSubject} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: give exactly one of serial, worker_id, pool and attestation_subject", ErrInvalidRequest)
	}
	if req.Serial != "" {
		n, err := ParseSerial(req.Serial)
		if err != nil {
			return err
		}
		req.Serial = ca.SerialHex(n)
	}
	if !slices.Contains(reasons, req.Reason) {
		return fmt.Errorf("%w: reason %d", ErrInvalidRequest, int(req.Reason))
	}
	if req.InvalidityDate != nil {
		inv := req.InvalidityDate.UTC().Truncate(time.Second)
		if inv.After(now) {
			return fmt.Errorf("%w: invalidity_date is in the future", ErrInvalidRequest)
		}
		req.InvalidityDate = &inv
	}
	return nil
}

// ParseSerial reads a serial in DESIGN.md's form (ca.ParseSerial); errors
// wrap ErrInvalidRequest.
func ParseSerial(s string) (*big.Int, error) {
	n, err := ca.ParseSerial(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return n, nil
}

// shardOf is a certificate's shard: as recorded, or from its serial for
// rows recorded before shards existed.
func (s *Service) shardOf(serial string, recorded *int) int {
	if recorded != nil {
		return *recorded
	}
	n, err := ParseSerial(serial)
	if err != nil {
		return 0
	}
	return ca.CRLShard(n, s.cfg.CRLShards)
}

// Start loads the stored CRLs, builds the missing and stale ones and gets
// the responder certificate: after it returns, everything can be served.
func (s *Service) Start(ctx context.Context) error {
	if err := s.crls.load(ctx); err != nil {
		return err
	}
	return s.ocsp.renew(ctx)
}

// Run keeps the CRLs, the responder certificate and the cached OCSP
// answers fresh until ctx is done. Call it after Start.
//
// With a SharedLedger, it also applies the revocations other replicas
// record (their cached OCSP answers are dropped, their CRLs rebuilt), and
// only the holder of the lease CRLLeaseName builds CRLs, for as long as it
// runs; the others serve the CRLs it stores, take the lease over at a
// tick (every 10 s, or CRLRebuild if shorter) once it is free, and build
// a CRL themselves only when the builder lets it go halfway from due to
// expired.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.crls.loop(ctx) })
	wg.Go(func() { s.ocsp.loop(ctx) })
	wg.Go(func() { s.listen(ctx) })
	wg.Wait()
}
