package ca

import "errors"

// Errors returned by package ca. Callers test for them with errors.Is.
var (
	// ErrBadCSR means the certificate request does not parse or its
	// self-signature does not verify (proof of possession failed).
	ErrBadCSR = errors.New("ca: bad certificate request")
	// ErrKeyNotAllowed means the request's public key is of a type or size
	// that the pool's policy refuses.
	ErrKeyNotAllowed = errors.New("ca: key type not allowed")
	// ErrProfile means a profile's template rendered a certificate that
	// breaks workerca's invariants (for example a second URI SAN).
	ErrProfile = errors.New("ca: profile violation")
	// ErrIntermediate means the intermediate cannot sign (expired, not a CA,
	// key does not match the certificate).
	ErrIntermediate = errors.New("ca: intermediate unusable")
	// ErrSerial means a serial is not in DESIGN.md's form.
	ErrSerial = errors.New("ca: serial must be the hex of its 1 to 20 octets, as openssl x509 -serial prints it")
)
