package ca

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Identity is what an enrollment proved about a worker. The registration
// authority fills it from verified evidence; nothing in it comes from the
// CSR.
type Identity struct {
	// TrustDomain is the SPIFFE trust domain, e.g. workers.example.com.
	TrustDomain string
	// Pool is the worker pool the evidence maps to.
	Pool string
	// WorkerID is the instance ID, EK-derived ID or token-bound name.
	WorkerID string
	// Method is the enrollment method ("token", "aws-iid", ...).
	Method string
	// EnrollmentID names the enrollment (e.g. the token's ID).
	EnrollmentID string
}

// SPIFFEID returns spiffe://<trust-domain>/worker/<pool>/<worker-id>, checked
// by go-spiffe's parser.
func (id Identity) SPIFFEID() (spiffeid.ID, error) {
	td, err := spiffeid.TrustDomainFromString(id.TrustDomain)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("ca: trust domain %q: %w", id.TrustDomain, err)
	}
	sid, err := spiffeid.FromSegments(td, "worker", id.Pool, id.WorkerID)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("ca: spiffe id for pool %q worker %q: %w", id.Pool, id.WorkerID, err)
	}
	return sid, nil
}

// CheckWorkerID reports whether s can be a worker ID: a non-empty SPIFFE
// path segment of letters, digits, '.', '-' and '_' (SPIFFE-ID §2.2), at
// most 128 characters, and not "." or "..".
func CheckWorkerID(s string) error {
	return checkSegment(s)
}

func checkSegment(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > 128 {
		return fmt.Errorf("%q is longer than 128 characters", s)
	}
	if err := spiffeid.ValidatePathSegment(s); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}
