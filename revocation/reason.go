package revocation

import (
	"fmt"
	"slices"
)

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

var reasonNames = map[Reason]string{
	Unspecified: "unspecified", KeyCompromise: "keyCompromise", CACompromise: "cACompromise",
	AffiliationChanged: "affiliationChanged", Superseded: "superseded",
	CessationOfOperation: "cessationOfOperation", PrivilegeWithdrawn: "privilegeWithdrawn",
}

// String is the RFC 5280 name ("keyCompromise").
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// ParseReason reads an RFC 5280 reason name; "" is unspecified.
// cACompromise is refused: it is for CA certificates, and workerca
// revokes end-entity certificates only.
func ParseReason(name string) (Reason, error) {
	if name == "" {
		return Unspecified, nil
	}
	for r, n := range reasonNames {
		if n == name && r != CACompromise {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: reason %q is not one of %v", ErrInvalidRequest, name, ReasonNames())
}

// ReasonNames lists the reasons ParseReason accepts.
func ReasonNames() []string {
	var out []string
	for _, r := range []Reason{Unspecified, KeyCompromise, AffiliationChanged, Superseded, CessationOfOperation, PrivilegeWithdrawn} {
		out = append(out, r.String())
	}
	return out
}

// WorkerReasons are the reasons a worker may give when it revokes its own
// certificate.
var WorkerReasons = []Reason{KeyCompromise, Superseded, CessationOfOperation}

// workerMay reports whether a worker may revoke itself for r.
func workerMay(r Reason) bool { return slices.Contains(WorkerReasons, r) }
