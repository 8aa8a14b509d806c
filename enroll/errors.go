package enroll

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by package enroll; package ca's ErrBadCSR and
// ErrKeyNotAllowed pass through unchanged. Callers test with errors.Is.
var (
	// ErrTokenInvalid means the token is malformed, unknown, or its secret
	// is wrong. The three are one error so that a caller without the
	// secret learns nothing about which IDs exist.
	ErrTokenInvalid = errors.New("enroll: enrollment token invalid")
	// ErrTokenExpired means the token's expiry has passed.
	ErrTokenExpired = errors.New("enroll: enrollment token expired")
	// ErrTokenUsed means the token was already consumed.
	ErrTokenUsed = errors.New("enroll: enrollment token already used")
	// ErrUnknownPool means no configured pool has that name.
	ErrUnknownPool = errors.New("enroll: unknown pool")
	// ErrMethodNotAllowed means the pool does not accept that enrollment
	// method.
	ErrMethodNotAllowed = errors.New("enroll: enrollment method not allowed for pool")
	// ErrPoolFull means the pool has reached its cap on active workers.
	ErrPoolFull = errors.New("enroll: pool at its maximum of active workers")
	// ErrInvalidRequest means a request field is out of bounds (worker ID
	// syntax, TTL, ...); the wrapped message says which.
	ErrInvalidRequest = errors.New("enroll: invalid request")
	// ErrLedgerUnavailable means the ledger could not be read or written;
	// no certificate was returned. Retry later.
	ErrLedgerUnavailable = errors.New("enroll: ledger unavailable")

	// ErrUnknownMethod means no attestor handles the requested method.
	ErrUnknownMethod = errors.New("enroll: unknown enrollment method")
	// ErrEvidenceMalformed means the evidence does not parse.
	ErrEvidenceMalformed = errors.New("enroll: evidence malformed")
	// ErrAttestationInvalid means the evidence's signature, signer or
	// binding (audience, nonce) does not verify.
	ErrAttestationInvalid = errors.New("enroll: attestation invalid")
	// ErrAttestationExpired means the evidence is too old or expired.
	ErrAttestationExpired = errors.New("enroll: attestation expired")
	// ErrAttestationNotAllowed means the evidence verifies but no pool's
	// policy admits it (account, project, subscription, region, age).
	ErrAttestationNotAllowed = errors.New("enroll: attestation not allowed by pool policy")
	// ErrReplay means single-use evidence was presented again.
	ErrReplay = errors.New("enroll: attestation evidence already used")
	// ErrAttestorUnavailable means the attestor could not get what it
	// needs to verify (e.g. a provider's key set); retry later.
	ErrAttestorUnavailable = errors.New("enroll: attestor unavailable")
	// ErrNonceRequired means the method needs a challenge nonce and the
	// request has none.
	ErrNonceRequired = errors.New("enroll: nonce required")
	// ErrNonceInvalid means the nonce is malformed or was never issued.
	ErrNonceInvalid = errors.New("enroll: nonce invalid")
	// ErrNonceExpired means the nonce's five minutes have passed.
	ErrNonceExpired = errors.New("enroll: nonce expired")
	// ErrNonceUsed means the nonce was already consumed.
	ErrNonceUsed = errors.New("enroll: nonce already used")
	// ErrRateLimited means the pool's enrollment rate limit is spent;
	// the error is a *RateLimitError that says when to retry.
	ErrRateLimited = errors.New("enroll: rate limited")
)

// RateLimitError is a refusal by a rate limit. It matches ErrRateLimited.
type RateLimitError struct {
	// Pool is the pool whose limit refused the request.
	Pool string
	// RetryAfter is how long until one more request would be admitted.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("enroll: pool %s: enrollment rate limit reached; retry after %v", e.Pool, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }
