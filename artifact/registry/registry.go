package registry

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/store"
)

// Errors of the registry. The artifact package's ErrMalformed,
// ErrBadSignature and ErrDigest also come through. Callers test with
// errors.Is.
var (
	// ErrInvalid means the request is malformed (such as an expiry in
	// the past or beyond MaxLifetime).
	ErrInvalid = errors.New("registry: invalid request")
	// ErrNotCaller means the signature's x5c leaf is not the certificate
	// the caller presented.
	ErrNotCaller = errors.New("registry: the signature is not by the presenting certificate")
	// ErrRevoked means the signing certificate was revoked.
	ErrRevoked = errors.New("registry: certificate revoked")
	// ErrNotFound means no registration of the digest is kept.
	ErrNotFound = errors.New("registry: no registration of this artifact")
	// ErrUnavailable means the ledger could not be read or written.
	ErrUnavailable = errors.New("registry: ledger unavailable")
)

// Ledger is what the registry needs from storage.
type Ledger interface {
	RegisterArtifact(ctx context.Context, a *store.Artifact, audit store.AuditEvent) (bool, error)
	Artifacts(ctx context.Context, sha256 string) ([]store.Artifact, error)
}

// DefaultMaxLifetime bounds a registration's expiry: the CA keeps the
// signing certificate's history at least that long.
const DefaultMaxLifetime = 5 * 365 * 24 * time.Hour

// Config wires a Registry.
type Config struct {
	// Ledger records registrations. Required.
	Ledger Ledger
	// ReceiptKey is the CA's status key; receipts verify with the JWKS
	// at /v1/status/keys. Required.
	ReceiptKey crypto.Signer
	// MaxLifetime caps ExpiresAt - now; 0 means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Registry registers artifact signatures.
type Registry struct {
	cfg    Config
	signer *artifact.ReceiptSigner
}

// New checks cfg and returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.Ledger == nil || cfg.ReceiptKey == nil {
		return nil, errors.New("registry: ledger and receipt key are required")
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.MaxLifetime < 0 {
		return nil, errors.New("registry: max lifetime must be positive")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s, err := artifact.NewReceiptSigner(cfg.ReceiptKey)
	if err != nil {
		return nil, err
	}
	return &Registry{cfg: cfg, signer: s}, nil
}

// MaxLifetime is the longest a registration may run.
func (r *Registry) MaxLifetime() time.Duration { return r.cfg.MaxLifetime }

// Request is one registration.
type Request struct {
	// Signature is the worker's compact artifact signature.
	Signature string
	// ExpiresAt is when the registration may end; after the present and
	// at most MaxLifetime ahead.
	ExpiresAt time.Time
	// Caller is the certificate the worker presented over mTLS, already
	// verified to our roots.
	Caller *x509.Certificate
	// Worker is Caller's ledger row.
	Worker *store.Certificate
}

// Registration is the outcome of Register.
type Registration struct {
	// Artifact is the recorded registration with its receipt.
	Artifact store.Artifact
	// Created is false when the same signature was registered before;
	// Artifact is then that first registration, receipt and all.
	Created bool
}

// Register checks req's signature and records it with a fresh receipt;
// registering a signature again returns the first registration.
func (r *Registry) Register(ctx context.Context, req Request) (*Registration, error) {
	if req.Caller == nil || req.Worker == nil {
		return nil, errors.New("registry: caller certificate and ledger row are required")
	}
	sig, err := artifact.Parse(req.Signature)
	if err != nil {
		return nil, err
	}
	if !sig.Leaf().Equal(req.Caller) {
		return nil, ErrNotCaller
	}
	now := r.cfg.Clock().UTC().Truncate(time.Second)
	exp := req.ExpiresAt.UTC().Truncate(time.Second)
	switch {
	case !exp.After(now):
		return nil, fmt.Errorf("%w: expires_at must be in the future", ErrInvalid)
	case exp.Sub(now) > r.cfg.MaxLifetime:
		return nil, fmt.Errorf("%w: expires_at is more than %s ahead", ErrInvalid, r.cfg.MaxLifetime)
	}
	sigHash := sig.Hash()
	receipt, err := r.signer.Sign(artifact.Receipt{
		SHA256: sig.Payload.SHA256, Serial: req.Worker.Serial, SPIFFEID: req.Worker.SPIFFEID,
		RegisteredAt: now, ExpiresAt: exp, SignatureSHA256: sigHash,
	})
	if err != nil {
		return nil, err
	}
	a := store.Artifact{
		SigSHA256: sigHash, SHA256: sig.Payload.SHA256, Name: sig.Payload.Name,
		Serial: req.Worker.Serial, WorkerID: req.Worker.WorkerID, Pool: req.Worker.Pool, SPIFFEID: req.Worker.SPIFFEID,
		Signature: sig.Compact, Receipt: receipt, RegisteredAt: now, ExpiresAt: exp,
	}
	detail, _ := json.Marshal(map[string]string{"serial": a.Serial, "expires_at": exp.Format(time.RFC3339), "signature_sha256": a.SigSHA256})
	created, err := r.cfg.Ledger.RegisterArtifact(ctx, &a, store.AuditEvent{
		At: now, Actor: "worker:" + req.Worker.WorkerID, Action: "artifact.registered", Target: a.SHA256, Detail: string(detail),
	})
	switch {
	case errors.Is(err, store.ErrRevoked):
		return nil, ErrRevoked
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &Registration{Artifact: a, Created: created}, nil
}

// Lookup returns the registrations of the artifact digest, oldest first.
func (r *Registry) Lookup(ctx context.Context, digest string) ([]store.Artifact, error) {
	if err := artifact.CheckDigest(digest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	out, err := r.cfg.Ledger.Artifacts(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}
