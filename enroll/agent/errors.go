package agent

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrPinMismatch means no root the CA served hashes to the pin: the
	// agent may be talking to someone else. Nothing secret was sent.
	ErrPinMismatch = errors.New("agent: no root in the CA's bundle matches the pin")
	// ErrNoTrust means there is no bundle.pem in the directory and no pin
	// to fetch one with.
	ErrNoTrust = errors.New("agent: no bundle.pem and no --ca-pin: cannot authenticate the CA")
	// ErrNotEnrolled means the directory holds no certificate to renew.
	ErrNotEnrolled = errors.New("agent: not enrolled")
	// ErrReattest means the CA will not renew this certificate and the
	// worker must prove its identity again (the pool's renewal chain cap,
	// an expired or unknown certificate).
	ErrReattest = errors.New("agent: the CA requires attestation again")
	// ErrPermanent marks failures retrying will not fix; Run returns
	// them and the command exits non-zero.
	ErrPermanent = errors.New("agent: permanent failure")
	// ErrMetadata means the provider's metadata service did not give the
	// evidence.
	ErrMetadata = errors.New("agent: metadata service")
)

// ServerError is a refusal from the CA: its HTTP status and the stable
// error code of its JSON body ({"error":{"code","message"}}).
type ServerError struct {
	// Op names what the agent was doing ("enroll", "renew", "bundle").
	Op string
	// Status is the HTTP status.
	Status int
	// Code is the error code, e.g. "token_used"; "" when the body was
	// not workerca's error JSON.
	Code string
	// Message is the CA's message.
	Message string
	// RetryAfter is the Retry-After header, if any.
	RetryAfter time.Duration
}

func (e *ServerError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("agent: %s: CA answered %d %s: %s", e.Op, e.Status, code, e.Message)
}

// reattestCodes are the renewal refusals that a fresh attestation fixes.
var reattestCodes = map[string]bool{
	"reattestation_required": true, "certificate_expired": true,
	"certificate_unknown": true, "certificate_untrusted": true,
}

// Is makes errors.Is(err, ErrReattest) and errors.Is(err, ErrPermanent)
// answer for refusals.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrReattest:
		return e.Op == "renew" && reattestCodes[e.Code]
	case ErrPermanent:
		return !e.Transient() && !(e.Op == "renew" && reattestCodes[e.Code])
	}
	return false
}

// Transient reports whether a retry later may succeed: 5xx, 429 and the
// CA's "retry later" codes.
func (e *ServerError) Transient() bool {
	switch e.Code {
	case "rate_limited", "ledger_unavailable", "attestor_unavailable", "store_unavailable", "nonce_expired":
		return true
	}
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// permanent wraps err so that errors.Is(err, ErrPermanent) holds, with
// advice for the person reading it.
func permanent(err error, advice string) error {
	if advice == "" {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return fmt.Errorf("%w: %w; %s", ErrPermanent, err, advice)
}

// advice is what a person should do about a refusal code.
func advice(code, tokenFile string) string {
	switch code {
	case "token_used":
		return fmt.Sprintf("the token in %s was already used: mint a new one (workerca token create) and write it to %s", tokenFile, tokenFile)
	case "token_expired":
		return fmt.Sprintf("the token in %s has expired: mint a new one (workerca token create) and write it to %s", tokenFile, tokenFile)
	case "token_invalid", "token_missing":
		return fmt.Sprintf("the CA does not know the token in %s: check it was minted by this CA", tokenFile)
	case "certificate_revoked":
		return "this worker's certificate was revoked: an operator must decide; remove the directory's files and enroll again with new evidence"
	case "method_not_allowed_for_pool", "attestation_not_allowed", "unknown_pool":
		return "the CA's pool policy does not admit this worker: ask the operator to check the pool's methods and allow-lists"
	case "attestation_replayed":
		return "the CA already enrolled this instance with this evidence (trust on first use): ask the operator to revoke and allow re-attestation"
	case "key_not_allowed":
		return "the pool does not accept this key type: pick another with --key-type"
	case "pool_full":
		return "the pool has reached max_active_workers: ask the operator to raise it or revoke idle workers"
	}
	return ""
}
