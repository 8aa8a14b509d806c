package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/apierror"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
)

// Error is an answer with a status and a stable snake_case code; handlers
// return it for refusals that are the edge's own (bad content type, missing
// credential, ...). Domain errors are mapped by problem.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when positive, becomes a Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errStoreUnavailable marks a store failure that is not one of the
// store's named outcomes: the database is down or failing. It answers 503.
var errStoreUnavailable = errors.New("web: store unavailable")

// storeError wraps an error from a direct store call: the store's named
// outcomes (not found, duplicate, ...) pass through, anything else is the
// database failing.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	for _, named := range []error{store.ErrNotFound, store.ErrDuplicate, store.ErrTokenUsed, store.ErrTokenExpired, store.ErrPoolFull, store.ErrInvalidCursor} {
		if errors.Is(err, named) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", errStoreUnavailable, err)
}

func newError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// problem is the one place where an error becomes an HTTP status and a
// stable code. Unknown errors become a generic 500; their detail goes to
// the log, never to the caller.
func problem(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return newError(http.StatusNotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
		}
	}
	var rl *enroll.RateLimitError
	if errors.As(err, &rl) {
		return rateLimited("the pool's enrollment rate limit is reached", rl.RetryAfter)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(http.StatusRequestEntityTooLarge, "body_too_large", "request body too large")
	}
	type m = struct {
		target error
		status int
		code   string
		msg    string
	}
	for _, x := range []m{
		{ca.ErrBadCSR, http.StatusBadRequest, "bad_csr", "the certificate request does not parse or its signature does not verify"},
		{ca.ErrKeyNotAllowed, http.StatusBadRequest, "key_not_allowed", "the request's key type or size is not allowed by the pool"},
		{enroll.ErrTokenInvalid, http.StatusUnauthorized, "token_invalid", "the enrollment token is not valid"},
		{enroll.ErrTokenExpired, http.StatusUnauthorized, "token_expired", "the enrollment token has expired"},
		{enroll.ErrTokenUsed, http.StatusUnauthorized, "token_used", "the enrollment token was already used"},
		{enroll.ErrPoolFull, http.StatusConflict, "pool_full", "the pool has reached its maximum of active workers"},
		{enroll.ErrMethodNotAllowed, http.StatusForbidden, "method_not_allowed_for_pool", "the pool does not accept this enrollment method"},
		{enroll.ErrUnknownPool, http.StatusBadRequest, "unknown_pool", "no such pool"},
		{enroll.ErrInvalidRequest, http.StatusBadRequest, "invalid_request", ""},
		{enroll.ErrUnknownMethod, http.StatusBadRequest, "unknown_method", ""},
		{enroll.ErrEvidenceMalformed, http.StatusBadRequest, "evidence_malformed", ""},
		{enroll.ErrNonceRequired, http.StatusBadRequest, "nonce_required", "this method needs a nonce from POST /v1/enroll/challenge"},
		{enroll.ErrNonceInvalid, http.StatusUnauthorized, "nonce_invalid", "the nonce was not issued by this CA"},
		{enroll.ErrNonceExpired, http.StatusUnauthorized, "nonce_expired", "the nonce has expired; get a new one"},
		{enroll.ErrNonceUsed, http.StatusUnauthorized, "nonce_used", "the nonce was already used; get a new one"},
		{enroll.ErrAttestationInvalid, http.StatusUnauthorized, "attestation_invalid", "the attestation evidence does not verify"},
		{enroll.ErrAttestationExpired, http.StatusUnauthorized, "attestation_expired", "the attestation evidence is too old or expired"},
		{enroll.ErrAttestationNotAllowed, http.StatusForbidden, "attestation_not_allowed", "no pool's policy admits this attestation"},
		{enroll.ErrReplay, http.StatusConflict, "attestation_replayed", "this attestation evidence was already used"},
		{enroll.ErrAttestorUnavailable, http.StatusServiceUnavailable, "attestor_unavailable", "the attestation could not be checked now; retry later"},
		{enroll.ErrCertificateUnknown, http.StatusUnauthorized, "certificate_unknown", "the client certificate is not a worker certificate in the ledger"},
		{enroll.ErrCertificateExpired, http.StatusUnauthorized, "certificate_expired", "the client certificate has expired; enroll again"},
		{enroll.ErrCertificateRevoked, http.StatusUnauthorized, "certificate_revoked", "the client certificate was revoked"},
		{enroll.ErrReattestationRequired, http.StatusForbidden, "reattestation_required", "the renewal chain is at the pool's limit; attest again with POST /v1/enroll"},
		{enroll.ErrEKUntrusted, http.StatusUnauthorized, "ek_untrusted", ""},
		{enroll.ErrEKNotRegistered, http.StatusUnauthorized, "ek_not_registered", ""},
		{enroll.ErrSessionInvalid, http.StatusUnauthorized, "tpm_session_invalid", "the TPM session was not issued by this CA; start again"},
		{enroll.ErrSessionExpired, http.StatusUnauthorized, "tpm_session_expired", "the TPM session has expired; start again"},
		{enroll.ErrSessionUsed, http.StatusUnauthorized, "tpm_session_used", "the TPM session was already finished or spent; start again"},
		{enroll.ErrActivationFailed, http.StatusUnauthorized, "tpm_activation_failed", "the secret is not the activated credential; the session is spent"},
		{enroll.ErrTPMEKExists, http.StatusConflict, "tpm_ek_exists", ""},
		{enroll.ErrTPMEKUnknown, http.StatusNotFound, "tpm_ek_not_found", ""},
		{enroll.ErrLedgerUnavailable, http.StatusServiceUnavailable, "ledger_unavailable", "the ledger is unavailable; no certificate was issued, retry later"},
		{revocation.ErrInvalidRequest, http.StatusBadRequest, "invalid_request", ""},
		{revocation.ErrNotFound, http.StatusNotFound, "certificate_not_found", "no certificate with that serial in the ledger"},
		{revocation.ErrNotOwn, http.StatusForbidden, "revocation_not_allowed", ""},
		{revocation.ErrNoCRL, http.StatusNotFound, "not_found", "no such CRL shard"},
		{revocation.ErrUnavailable, http.StatusServiceUnavailable, "store_unavailable", "the database is unavailable, retry later"},
		{artifact.ErrDigest, http.StatusBadRequest, "invalid_digest", ""},
		{artifact.ErrBadSignature, http.StatusBadRequest, "signature_invalid", ""},
		{artifact.ErrMalformed, http.StatusBadRequest, "signature_malformed", ""},
		{registry.ErrInvalid, http.StatusBadRequest, "invalid_request", ""},
		{registry.ErrNotCaller, http.StatusForbidden, "signer_not_caller", "the signature's x5c leaf is not the certificate presented over mTLS"},
		{registry.ErrRevoked, http.StatusUnauthorized, "certificate_revoked", "the client certificate was revoked"},
		{registry.ErrNotFound, http.StatusNotFound, "artifact_not_found", "no registration of this artifact is kept"},
		{registry.ErrUnavailable, http.StatusServiceUnavailable, "store_unavailable", "the database is unavailable, retry later"},
		{store.ErrInvalidCursor, http.StatusBadRequest, "invalid_cursor", "the cursor is not one this server gave"},
		{store.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
		{errStoreUnavailable, http.StatusServiceUnavailable, "store_unavailable", "the database is unavailable, retry later"},
	} {
		if errors.Is(err, x.target) {
			msg := x.msg
			if msg == "" {
				msg = err.Error()
			}
			return newError(x.status, x.code, msg)
		}
	}
	return newError(http.StatusInternalServerError, "internal_error", "internal error")
}

// errorHandler is echo's HTTPErrorHandler: every error leaves as JSON.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problem(err)
	level := slog.LevelInfo
	if p.Status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(c.Request().Context(), level, "request refused",
		slog.String("request_id", requestID(c)), slog.String("code", p.Code),
		slog.Int("status", p.Status), slog.String("detail", err.Error()))
	body := apierror.Body{Error: apierror.Detail{Code: p.Code, Message: p.Message}}
	if p.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(int64((p.RetryAfter+time.Second-1)/time.Second), 10))
	}
	if p.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="workerca"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	_ = c.JSON(p.Status, body)
}
