package azure

import "errors"

// The reasons Verify refuses a document. Every error Verify returns wraps
// exactly one of them (check with errors.Is); the wrapping message carries
// the detail for the log.
var (
	// ErrMalformed: the evidence is not a base64 PKCS#7 SignedData (or an
	// IMDS answer holding one) with exactly one signer and its certificate,
	// or the signed content is not an attested-data JSON document with a
	// vmId and both timestamps, at most MaxLifetime apart.
	ErrMalformed = errors.New("azure: malformed attested document")
	// ErrSignature: the PKCS#7 signature does not verify with the signer
	// certificate's key, or uses an algorithm other than RSA PKCS#1 v1.5
	// with SHA-256 directly over the content.
	ErrSignature = errors.New("azure: signature does not verify")
	// ErrUntrusted: the signer certificate does not chain to a configured
	// root at the document's createdOn, or createdOn is outside the
	// signer certificate's validity.
	ErrUntrusted = errors.New("azure: signer not trusted")
	// ErrSigner: the signer certificate is not for metadata.azure.com or a
	// subdomain of it.
	ErrSigner = errors.New("azure: signer is not metadata.azure.com")
	// ErrNonce: the document's nonce is not the expected one (or no nonce
	// was expected).
	ErrNonce = errors.New("azure: nonce mismatch")
	// ErrExpired: the document's expiresOn has passed, or its createdOn is
	// in the future.
	ErrExpired = errors.New("azure: attested document expired or not yet valid")
	// ErrSubscriptionNotAllowed: the document's subscriptionId is not in
	// the policy's allow-list.
	ErrSubscriptionNotAllowed = errors.New("azure: subscription not allowed")
)
