package enroll

import "errors"

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
)
