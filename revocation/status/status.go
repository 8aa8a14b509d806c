// Package status is the wire form of workerca's signed revocation status,
// kept free of the CA's own dependencies so that relying parties (package
// verifier, services) can read answers without linking the ledger: the
// answer's payload (Answer), its JWS media type, the statuses, and the
// CRLReason codes (RFC 5280 §5.3.1) with their RFC names. Package
// revocation makes and signs answers; it re-exports these names.
package status

import (
	"fmt"
	"time"
)

// MediaType is the JWS "typ" header of status answers.
const MediaType = "workerca-status+jws"

// The statuses of an answer.
const (
	Good        = "good"
	Revoked     = "revoked"
	Expired     = "expired"
	NotYetValid = "not_yet_valid"
	Unknown     = "unknown"
)

// Answer is the payload of a signed status answer.
type Answer struct {
	// Serial is the certificate's serial (lowercase hex).
	Serial string `json:"serial"`
	// Status is good, revoked, expired, not_yet_valid or unknown (never
	// issued by this CA, or pruned from the ledger), as of At.
	Status string `json:"status"`
	// RevokedAt, Reason and InvalidityDate describe a revocation in
	// effect at At (even when Status is expired).
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
	// ThisUpdate is when the answer was made; NextUpdate when a newer one
	// should be fetched.
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	// At is the instant the status is for.
	At time.Time `json:"at"`
}

// Reason is a CRLReason (RFC 5280 §5.3.1).
type Reason int

// The CRLReason codes workerca records. certificateHold (6) and
// removeFromCRL (8) are not offered: revocation here is final.
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	PrivilegeWithdrawn   Reason = 9
)

// String is the RFC 5280 name ("keyCompromise").
func (r Reason) String() string {
	switch r {
	case Unspecified:
		return "unspecified"
	case KeyCompromise:
		return "keyCompromise"
	case CACompromise:
		return "cACompromise"
	case AffiliationChanged:
		return "affiliationChanged"
	case Superseded:
		return "superseded"
	case CessationOfOperation:
		return "cessationOfOperation"
	case PrivilegeWithdrawn:
		return "privilegeWithdrawn"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}
