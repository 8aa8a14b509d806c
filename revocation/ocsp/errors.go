package ocsp

import "errors"

// Errors returned by package ocsp. Callers test for them with errors.Is.
var (
	// ErrMalformed means an OCSP request could not be accepted: it is not
	// DER, breaks the RFC 6960 §4.1.1 syntax, or breaks a rule this package
	// enforces (one request per RFC 5019 §2.1.1, a supported CertID hash, a
	// nonce of 1 to 128 octets per RFC 9654 §2.1, no critical extension this
	// package does not understand). The caller answers it with
	// ErrorResponse(MalformedRequest).
	ErrMalformed = errors.New("ocsp: malformed request")
	// ErrInvalidConfig means a responder Config cannot be used: a field is
	// missing, the responder certificate is not delegated by the issuer
	// (RFC 6960 §4.2.2.2), or the key does not match the certificate.
	ErrInvalidConfig = errors.New("ocsp: invalid responder configuration")
	// ErrInvalidResponse means a Response given to Responder.Sign cannot be
	// encoded: a required field is missing, a time is not whole seconds, or
	// a value is outside what RFC 6960 or RFC 5280 allows.
	ErrInvalidResponse = errors.New("ocsp: invalid response")
)
