package enroll

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/workerca/workerca/store"
)

// ChallengeTTL is how long a nonce from CreateChallenge is accepted.
const ChallengeTTL = 5 * time.Minute

// nonceBytes is the nonce's entropy: 256 bits, above the 128 the design
// asks for.
const nonceBytes = 32

// Challenge is a fresh single-use nonce for POST /v1/enroll.
type Challenge struct {
	// Nonce is base64url without padding; only its hash is stored.
	Nonce string
	// ExpiresAt is when it stops being accepted.
	ExpiresAt time.Time
}

// challenges is the part of the ledger challenges need.
type challenges interface {
	CreateChallenge(ctx context.Context, c *store.Challenge) error
	Challenge(ctx context.Context, nonceHash string) (*store.Challenge, error)
}

// CreateChallenge hands out a nonce valid for ChallengeTTL.
func (s *Service) CreateChallenge(ctx context.Context) (*Challenge, error) {
	b := make([]byte, nonceBytes)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("enroll: nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Clock().UTC()
	c := &store.Challenge{NonceHash: hashNonce(nonce), CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := s.cfg.Ledger.CreateChallenge(ctx, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return &Challenge{Nonce: nonce, ExpiresAt: c.ExpiresAt}, nil
}

// hashNonce is the nonce's storage key.
func hashNonce(nonce string) string {
	h := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(h[:])
}

// checkNonce says whether nonce is outstanding. It is only an early,
// clear answer: the single-use guarantee is the conditional update in the
// issuance transaction.
func (s *Service) checkNonce(ctx context.Context, nonce string) error {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceBytes {
		return fmt.Errorf("%w: not a nonce from /v1/enroll/challenge", ErrNonceInvalid)
	}
	c, err := s.cfg.Ledger.Challenge(ctx, hashNonce(nonce))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: never issued or pruned", ErrNonceInvalid)
	case err != nil:
		return fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	case c.UsedAt != nil:
		return fmt.Errorf("%w: used at %s", ErrNonceUsed, c.UsedAt.Format(time.RFC3339))
	case !s.cfg.Clock().Before(c.ExpiresAt):
		return fmt.Errorf("%w: expired at %s", ErrNonceExpired, c.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}
