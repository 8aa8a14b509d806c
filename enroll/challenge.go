package enroll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/workerca/workerca/store"
)

// ChallengeTTL is how long a nonce from CreateChallenge is accepted.
const ChallengeTTL = 5 * time.Minute

// NonceLength is the nonce's length in characters. A nonce is drawn
// uniformly from the 62 letters and digits, so it is valid base64url
// text, carries 190 bits, and fits Azure IMDS, which takes at most 32
// alphanumeric characters as its attested document's nonce.
const NonceLength = 32

const nonceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Challenge is a fresh single-use nonce for POST /v1/enroll.
type Challenge struct {
	// Nonce is NonceLength letters and digits; only its hash is stored.
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
	nonce, err := randomNonce(s.cfg.Rand)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UTC()
	c := &store.Challenge{NonceHash: hashNonce(nonce), CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := s.cfg.Ledger.CreateChallenge(ctx, c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return &Challenge{Nonce: nonce, ExpiresAt: c.ExpiresAt}, nil
}

// randomNonce draws NonceLength characters of nonceAlphabet uniformly,
// rejecting bytes that would bias the draw.
func randomNonce(r io.Reader) (string, error) {
	out := make([]byte, 0, NonceLength)
	buf := make([]byte, 64)
	const limit = 256 - 256%len(nonceAlphabet) // 248: bytes below it map uniformly
	for len(out) < NonceLength {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("enroll: nonce: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < NonceLength {
				out = append(out, nonceAlphabet[int(b)%len(nonceAlphabet)])
			}
		}
	}
	return string(out), nil
}

// validNonce reports whether s has the shape of our nonces.
func validNonce(s string) bool {
	if len(s) != NonceLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(nonceAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
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
	if !validNonce(nonce) {
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
