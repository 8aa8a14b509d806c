package gcpiit

import "errors"

// Errors returned by Verify, each wrapped with %w and a detail message.
// Callers test with errors.Is; every refusal matches exactly one of them.
// A misconfigured Policy gives an error matching none of them.
var (
	// ErrMalformed means the evidence or the token does not parse: not a
	// compact JWS, not canonical base64url, oversized, claims that are
	// not JSON or lack exp/iat, or a google.compute_engine claim without
	// its instance ID, project ID or creation time.
	ErrMalformed = errors.New("gcpiit: identity token malformed")
	// ErrSignature means the token is not signed by a key in Google's key
	// set: a bad signature, a key ID the set does not hold even after a
	// refresh, or an algorithm other than RS256 (including "none" and
	// HS256).
	ErrSignature = errors.New("gcpiit: identity token signature invalid")
	// ErrKeysUnavailable means no usable key set could be had: the fetch
	// failed and nothing usable is cached. Retry later (HTTP 503).
	ErrKeysUnavailable = errors.New("gcpiit: Google key set unavailable")
	// ErrIssuer means iss is neither "https://accounts.google.com" nor
	// "accounts.google.com".
	ErrIssuer = errors.New("gcpiit: identity token issuer not Google")
	// ErrAudience means aud is not exactly Policy.Audience (so the token
	// was not requested for this CA and this nonce).
	ErrAudience = errors.New("gcpiit: identity token audience mismatch")
	// ErrExpired means exp has passed, or iat (or nbf) lies in the future,
	// by more than Leeway.
	ErrExpired = errors.New("gcpiit: identity token expired or not yet valid")
	// ErrProjectNotAllowed means the instance's project is not in
	// Policy.Projects.
	ErrProjectNotAllowed = errors.New("gcpiit: project not allowed")
	// ErrInstanceTooOld means the instance was created longer ago than
	// Policy.MaxInstanceAge.
	ErrInstanceTooOld = errors.New("gcpiit: instance too old")
	// ErrNotComputeEngine means the token has no google.compute_engine
	// claim: it was not requested with format=full, or not by a Compute
	// Engine instance.
	ErrNotComputeEngine = errors.New("gcpiit: identity token has no google.compute_engine claim")
)
