package enroll

import (
	"errors"
	"fmt"
)

// errorKind maps an attestor package's sentinel to this package's kind.
type errorKind struct {
	from error
	to   error
}

// classify wraps err with the kind of the first matching sentinel; an
// error no sentinel matches is wrapped as ErrAttestationInvalid, so an
// unexpected verifier failure refuses rather than issues.
func classify(err error, kinds []errorKind) error {
	for _, k := range kinds {
		if errors.Is(err, k.from) {
			return fmt.Errorf("%w: %w", k.to, err)
		}
	}
	return fmt.Errorf("%w: %w", ErrAttestationInvalid, err)
}

// candidatePools returns the pools to try, in configuration order: the
// requested one only, when the worker named one.
func candidatePools[P interface{ poolName() string }](pools []P, requested string) ([]P, error) {
	if requested == "" {
		return pools, nil
	}
	for _, p := range pools {
		if p.poolName() == requested {
			return []P{p}, nil
		}
	}
	return nil, fmt.Errorf("%w: pool %s has no policy for this method", ErrMethodNotAllowed, requested)
}

// firstPool runs try on each candidate pool in order and returns the first
// success. A refusal by one pool's policy (ErrAttestationNotAllowed) moves
// on to the next pool; any other refusal (bad signature, replayed, ...)
// does not depend on the pool and ends the search.
func firstPool[P any](pools []P, try func(P) (*Attestation, error)) (*Attestation, error) {
	var last error
	for _, p := range pools {
		a, err := try(p)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, ErrAttestationNotAllowed) {
			return nil, err
		}
		last = err
	}
	if last == nil {
		return nil, fmt.Errorf("%w: no pool has a policy for this method", ErrAttestationNotAllowed)
	}
	return nil, last
}
