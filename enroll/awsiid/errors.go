package awsiid

import "errors"

// Refusals returned by Verifier.Verify and DecodeEvidence. Each is wrapped
// with %w and a detail saying what exactly was wrong; callers test with
// errors.Is.
var (
	// ErrMalformed means the evidence or the document cannot be used as
	// sent: bad JSON or base64, a missing field, both or neither of
	// signature and pkcs7, a PKCS#7 that does not parse or whose content
	// differs from the document.
	ErrMalformed = errors.New("awsiid: malformed evidence")
	// ErrSignature means no trusted certificate for the document's region
	// and the evidence's form verifies the signature.
	ErrSignature = errors.New("awsiid: signature not verified")
	// ErrAccountNotAllowed means the document's account is not in
	// Policy.Accounts.
	ErrAccountNotAllowed = errors.New("awsiid: account not allowed")
	// ErrRegionNotAllowed means the document's region is not in
	// Policy.Regions.
	ErrRegionNotAllowed = errors.New("awsiid: region not allowed")
	// ErrTooOld means more than Policy.MaxAge has passed since the
	// document's pendingTime.
	ErrTooOld = errors.New("awsiid: document too old")
	// ErrFromFuture means the document's pendingTime is more than one
	// minute after the verifier's clock.
	ErrFromFuture = errors.New("awsiid: document from the future")
)
