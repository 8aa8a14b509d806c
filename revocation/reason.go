package revocation

import (
	"fmt"
	"slices"

	"github.com/workerca/workerca/revocation/status"
)

// Reason is a CRLReason (RFC 5280 §5.3.1); see package status.
type Reason = status.Reason

// The CRLReason codes workerca records (package status).
const (
	Unspecified          = status.Unspecified
	KeyCompromise        = status.KeyCompromise
	CACompromise         = status.CACompromise
	AffiliationChanged   = status.AffiliationChanged
	Superseded           = status.Superseded
	CessationOfOperation = status.CessationOfOperation
	PrivilegeWithdrawn   = status.PrivilegeWithdrawn
)

// reasons are the codes workerca revokes for, in the order ReasonNames
// lists them. cACompromise is not one: it is for CA certificates, and
// workerca revokes end-entity certificates only.
var reasons = []Reason{Unspecified, KeyCompromise, AffiliationChanged, Superseded, CessationOfOperation, PrivilegeWithdrawn}

// ParseReason reads an RFC 5280 reason name; "" is unspecified.
// cACompromise is refused (see reasons).
func ParseReason(name string) (Reason, error) {
	if name == "" {
		return Unspecified, nil
	}
	for _, r := range reasons {
		if r.String() == name {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: reason %q is not one of %v", ErrInvalidRequest, name, ReasonNames())
}

// ReasonNames lists the reasons ParseReason accepts.
func ReasonNames() []string {
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, r.String())
	}
	return out
}

// WorkerReasons are the reasons a worker may give when it revokes its own
// certificate.
var WorkerReasons = []Reason{KeyCompromise, Superseded, CessationOfOperation}

// workerMay reports whether a worker may revoke itself for r.
func workerMay(r Reason) bool { return slices.Contains(WorkerReasons, r) }
