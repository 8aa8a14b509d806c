package enroll

import (
	"fmt"
	"slices"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/ratelimit"
)

// Enrollment methods.
const (
	MethodToken = "token"
)

// DefaultPoolRateLimit is the enrollment limit `workerca serve` gives a
// pool whose configuration names none: 600 a minute after a burst of 100,
// enough for a large scale-out, little for a runaway or stolen enroller.
var DefaultPoolRateLimit = ratelimit.Limit{PerMinute: 600, Burst: 100}

// Pool is one worker pool's runtime policy.
type Pool struct {
	// Profile renders and constrains the pool's certificates; its name is
	// the pool's name.
	Profile *ca.Profile
	// MaxActiveWorkers caps the distinct workers holding an unexpired,
	// unrevoked certificate; 0 means no cap.
	MaxActiveWorkers int
	// Methods lists the enrollment methods the pool accepts.
	Methods []string
	// MaxRenewalChain caps how long a worker may renew over mTLS after
	// its last attestation before it must attest again; 0 means no cap.
	MaxRenewalChain time.Duration
	// RateLimit caps the pool's enrollments by every method; only
	// issued certificates count (a refusal gives its token back). The zero
	// Limit is none. Renewals are not counted.
	RateLimit ratelimit.Limit
}

// Name returns the pool's name.
func (p Pool) Name() string { return p.Profile.Name() }

func (p Pool) allows(method string) bool { return slices.Contains(p.Methods, method) }

// checkPool checks p against the methods the service has attestors for.
func checkPool(p Pool, known []string) error {
	if p.Profile == nil {
		return fmt.Errorf("enroll: pool without profile")
	}
	if p.MaxRenewalChain < 0 {
		return fmt.Errorf("enroll: pool %s: max_renewal_chain must not be negative", p.Name())
	}
	if p.MaxActiveWorkers < 0 {
		return fmt.Errorf("enroll: pool %s: max_active_workers must not be negative", p.Name())
	}
	if err := p.RateLimit.Check(); err != nil {
		return fmt.Errorf("enroll: pool %s: rate limit: %w", p.Name(), err)
	}
	if len(p.Methods) == 0 {
		return fmt.Errorf("enroll: pool %s: no enrollment methods", p.Name())
	}
	for _, m := range p.Methods {
		if !slices.Contains(known, m) {
			return fmt.Errorf("enroll: pool %s: enrollment method %q has no attestor configured (have: %v)", p.Name(), m, known)
		}
	}
	return nil
}
