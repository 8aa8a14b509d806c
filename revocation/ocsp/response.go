package ocsp

import (
	"crypto"
	"math/big"
	"strconv"
	"time"
)

// Status is the status of one certificate in a response, the CertStatus
// CHOICE of RFC 6960 §4.2.1. Its zero value is not a status, so a Response
// whose Status was never set is refused rather than answered "good".
type Status int

// The certificate statuses of RFC 6960 §2.2.
const (
	// Good means the certificate is not revoked.
	Good Status = iota + 1
	// Revoked means the certificate is revoked, at Response.RevokedAt and
	// for Response.Reason.
	Revoked
	// Unknown means the responder knows nothing of the serial number. It is
	// the answer for a serial this CA never issued: the RFC 6960 §2.2
	// "revoked" answer for non-issued certificates, with its extended
	// revoked definition extension, is not offered.
	Unknown
)

// String returns the RFC 6960 name of s.
func (s Status) String() string {
	switch s {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	case Unknown:
		return "unknown"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// ResponseStatus is an unsuccessful OCSPResponseStatus (RFC 6960 §4.2.1),
// the whole answer when no signed response can be given.
type ResponseStatus int

// The unsuccessful OCSPResponseStatus values of RFC 6960 §4.2.1. Value 4 is
// unused; successful (0) is what Responder.Sign produces.
const (
	// MalformedRequest answers a request that does not parse (ErrMalformed).
	MalformedRequest ResponseStatus = 1
	// InternalError means the responder reached an inconsistent state.
	InternalError ResponseStatus = 2
	// TryLater means the responder is temporarily unable to answer.
	TryLater ResponseStatus = 3
	// SigRequired means the responder requires signed requests.
	SigRequired ResponseStatus = 5
	// Unauthorized means the responder cannot answer for this certificate
	// authoritatively, for instance a request for another issuer (RFC 5019
	// §2.2.3).
	Unauthorized ResponseStatus = 6
)

// String returns the RFC 6960 name of s.
func (s ResponseStatus) String() string {
	switch s {
	case MalformedRequest:
		return "malformedRequest"
	case InternalError:
		return "internalError"
	case TryLater:
		return "tryLater"
	case SigRequired:
		return "sigRequired"
	case Unauthorized:
		return "unauthorized"
	}
	return "ResponseStatus(" + strconv.Itoa(int(s)) + ")"
}

// ErrorResponse returns the DER OCSPResponse carrying status and no
// responseBytes (RFC 6960 §4.2.1); such a response is not signed. A value
// that is not one of the constants above, successful included, is encoded
// as InternalError: a caller that asks for it is itself in error.
func ErrorResponse(status ResponseStatus) []byte {
	switch status {
	case MalformedRequest, InternalError, TryLater, SigRequired, Unauthorized:
	default:
		status = InternalError
	}
	// SEQUENCE { responseStatus ENUMERATED }
	return []byte{0x30, 0x03, 0x0a, 0x01, byte(status)}
}

// Response is what Responder.Sign encodes: the status of one certificate and
// the times of the answer. All times must be whole seconds (RFC 5019 §2.2.4
// forbids fractional seconds; the caller truncates) and are written as UTC
// GeneralizedTime. Nothing here reads the clock.
type Response struct {
	// Status is Good, Revoked or Unknown. Required.
	Status Status
	// SerialNumber is the serial asked about, echoed in the CertID.
	// Required, not negative.
	SerialNumber *big.Int
	// HashAlgorithm is the CertID hash to answer with: the request's
	// Request.HashAlgorithm. The issuer hashes are computed under it.
	// Required.
	HashAlgorithm crypto.Hash
	// RevokedAt is the revocationTime. Required when Status is Revoked,
	// ignored otherwise.
	RevokedAt time.Time
	// Reason is the CRLReason (RFC 5280 §5.3.1) when Status is Revoked, or
	// -1 to omit revocationReason. RFC 5280 §5.3.1 prefers omitting it to
	// sending unspecified (0). Ignored unless Status is Revoked.
	Reason int
	// ThisUpdate is when the status was known to be correct. Required.
	ThisUpdate time.Time
	// NextUpdate is when newer status will be available. Required, as RFC
	// 5019 §2.2.4 demands, and after ThisUpdate.
	NextUpdate time.Time
	// ProducedAt is when the response is signed. Required, and within the
	// responder certificate's validity.
	ProducedAt time.Time
	// Nonce, when not nil, is echoed as an id-pkix-ocsp-nonce extension in
	// responseExtensions (RFC 9654 §2.1): pass Request.Nonce. It must hold
	// 1 to MaxNonceLen octets. A response with a nonce cannot be cached or
	// pre-produced; RFC 9654 §2.1 lets a responder ignore a nonce shorter
	// than 16 octets, which the caller may choose to do.
	Nonce []byte
}
