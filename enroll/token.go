package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
)

// Token lifetimes.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 7 * 24 * time.Hour
)

// TokenRequest asks for a one-time enrollment token.
type TokenRequest struct {
	// Pool the token enrolls into; it must accept the token method.
	Pool string
	// WorkerID the certificate will name.
	WorkerID string
	// TTL until the token expires; 0 means DefaultTokenTTL, at most
	// MaxTokenTTL.
	TTL time.Duration
	// CreatedBy names the operator credential, for the audit log.
	CreatedBy string
}

// Token is a newly minted token. Value is shown once and never stored.
type Token struct {
	Value     string
	ID        string
	ExpiresAt time.Time
}

// CreateToken mints a one-time token bound to a pool and worker ID and
// stores only its hash.
func (s *Service) CreateToken(ctx context.Context, req TokenRequest) (*Token, error) {
	pool, err := s.Pool(req.Pool)
	if err != nil {
		return nil, err
	}
	if !pool.allows(MethodToken) {
		return nil, fmt.Errorf("%w: pool %s does not accept tokens", ErrMethodNotAllowed, pool.Name())
	}
	if err := ca.CheckWorkerID(req.WorkerID); err != nil {
		return nil, fmt.Errorf("%w: worker_id %v", ErrInvalidRequest, err)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Minute || ttl > MaxTokenTTL {
		return nil, fmt.Errorf("%w: ttl %s outside [1m, %s]", ErrInvalidRequest, ttl, MaxTokenTTL)
	}
	c, err := credential.New(credential.EnrollmentToken, s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UTC()
	row := &store.EnrollmentToken{
		ID: c.ID, SecretHash: c.Hash(), Pool: pool.Name(), WorkerID: req.WorkerID,
		CreatedBy: req.CreatedBy, CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
	audit := store.AuditEvent{At: now, Actor: req.CreatedBy, Action: "token.created", Target: c.ID,
		Detail: fmt.Sprintf(`{"pool":%q,"worker_id":%q,"expires_at":%q}`, row.Pool, row.WorkerID, row.ExpiresAt.Format(time.RFC3339))}
	if err := s.cfg.Ledger.CreateToken(ctx, row, audit); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return &Token{Value: c.String(), ID: c.ID, ExpiresAt: row.ExpiresAt}, nil
}

// EnrollToken verifies a one-time token and issues the certificate it is
// bound to. The token is consumed in the same transaction that records the
// certificate, so of two concurrent uses exactly one succeeds.
func (s *Service) EnrollToken(ctx context.Context, token string, csr []byte) (*Result, error) {
	start := s.cfg.Clock()
	row, err := s.checkToken(ctx, token)
	if err != nil {
		pool := "unknown"
		if row != nil {
			pool = row.Pool
		}
		s.observe(pool, MethodToken, err, start)
		return nil, err
	}
	a := s.tokenAttestation(row)
	return s.issueLimited(row.Pool, MethodToken, start, func() (*Result, error) {
		return s.Issue(ctx, Request{
			CSR:                csr,
			Identity:           ca.Identity{Pool: a.Pool, WorkerID: a.WorkerID, Method: MethodToken, EnrollmentID: a.EnrollmentID},
			AttestationSubject: a.Subject,
			Evidence:           a.Evidence,
			TokenID:            a.TokenID,
			Actor:              a.Subject,
		})
	})
}

// tokenAttestation is what a checked token vouches for.
func (s *Service) tokenAttestation(row *store.EnrollmentToken) *Attestation {
	return &Attestation{
		Pool: row.Pool, WorkerID: row.WorkerID, EnrollmentID: row.ID,
		Subject:  "token:" + row.ID,
		Evidence: map[string]string{"token_id": row.ID, "created_by": row.CreatedBy},
		TokenID:  row.ID,
	}
}

// checkToken finds the token row and checks secret, use and expiry. The
// row is returned with refusals that come after the secret matched.
func (s *Service) checkToken(ctx context.Context, token string) (*store.EnrollmentToken, error) {
	c, err := credential.Parse(credential.EnrollmentToken, token)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	row, err := s.cfg.Ledger.Token(ctx, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: unknown id %s", ErrTokenInvalid, c.ID)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	if !c.Matches(row.SecretHash) {
		return nil, fmt.Errorf("%w: wrong secret for id %s", ErrTokenInvalid, c.ID)
	}
	if row.UsedAt != nil {
		return row, fmt.Errorf("%w: id %s used at %s", ErrTokenUsed, c.ID, row.UsedAt.Format(time.RFC3339))
	}
	if !s.cfg.Clock().Before(row.ExpiresAt) {
		return row, fmt.Errorf("%w: id %s expired at %s", ErrTokenExpired, c.ID, row.ExpiresAt.Format(time.RFC3339))
	}
	return row, nil
}
