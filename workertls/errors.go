package workertls

import "errors"

// Errors returned by this package, checked with errors.Is. A refused
// handshake's error wraps exactly one of ErrUntrusted, ErrNotSVID,
// ErrNotAuthorized, ErrRevoked and ErrRevocationUnavailable.
var (
	// ErrConfig reports a ClientConfig or ServerConfig that cannot work.
	ErrConfig = errors.New("workertls: invalid configuration")
	// ErrFiles reports credential files (key.pem, chain.pem, bundle.pem)
	// that are missing, malformed, or a key that does not match its
	// certificate.
	ErrFiles = errors.New("workertls: unusable credential files")
	// ErrUntrusted reports a peer chain that does not verify to the trust
	// bundle at the clock's time (RFC 5280 §6), or no certificate at all.
	ErrUntrusted = errors.New("workertls: peer certificate not trusted")
	// ErrNotSVID reports a leaf that is not an X509-SVID: not exactly one
	// URI SAN holding a valid SPIFFE ID, or a CA certificate (SPIFFE
	// X509-SVID §4, §5).
	ErrNotSVID = errors.New("workertls: peer certificate is not an X509-SVID")
	// ErrNotAuthorized reports a valid peer whose SPIFFE ID the
	// Authorizer refused.
	ErrNotAuthorized = errors.New("workertls: peer not authorized")
	// ErrRevoked reports a peer certificate listed on its issuer's CRL.
	ErrRevoked = errors.New("workertls: peer certificate revoked")
	// ErrRevocationUnavailable reports that no usable CRL covers the peer
	// certificate: none could be fetched, or what was fetched does not
	// verify, does not cover the certificate, or is past its nextUpdate.
	// Fail closed refuses the connection; FailOpen accepts it.
	ErrRevocationUnavailable = errors.New("workertls: revocation status unavailable")
	// ErrNoPeer reports a request that did not come over TLS with a
	// client certificate.
	ErrNoPeer = errors.New("workertls: no TLS peer certificate")
)
