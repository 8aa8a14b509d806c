package agent

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// RenewAt is when Run renews leaf: two thirds into its lifetime, made
// earlier by up to Config.Jitter of the lifetime (drawn from Config.Rand)
// so that a fleet enrolled together does not renew together.
func (a *Agent) RenewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	var b [8]byte
	u := 0.0
	if _, err := io.ReadFull(a.cfg.Rand, b[:]); err == nil {
		u = float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
	}
	early := time.Duration(float64(life) * a.cfg.Jitter * u)
	return leaf.NotBefore.Add(life*2/3 - early)
}

// sleep waits d on the agent's After; false when ctx ended first.
func (a *Agent) sleep(ctx context.Context, d time.Duration) bool {
	if d < 0 {
		d = 0
	}
	select {
	case <-ctx.Done():
		return false
	case <-a.cfg.After(d):
		return true
	}
}

// Run keeps the certificate fresh until ctx ends (then it returns nil)
// or a failure retrying cannot fix (then an error matching ErrPermanent,
// with what to do about it). It enrolls first if the directory holds no
// certificate; renews at RenewAt over mTLS; attests again with the
// configured method when the CA asks (the pool's renewal chain cap) or
// the certificate has expired; backs off exponentially between
// MinBackoff and MaxBackoff (or the CA's Retry-After) after failures that
// may pass; refreshes bundle.pem after each new certificate; and calls
// OnRenew once the new files are in place.
func (a *Agent) Run(ctx context.Context) error {
	backoff := a.cfg.MinBackoff
	for {
		cur, err := a.load()
		switch {
		case errors.Is(err, ErrNotEnrolled):
			if a.cfg.Method == "" {
				return permanent(err, "run 'workerca-agent enroll' first, or give --method to enroll")
			}
			_, err = a.Enroll(ctx)
		case err != nil:
			return permanent(err, "the key or certificate in "+a.cfg.Dir+" is unreadable: remove them and enroll again")
		default:
			at := a.RenewAt(cur.Leaf)
			a.log.InfoContext(ctx, "next renewal", "at", at, "not_after", cur.Leaf.NotAfter)
			if !a.sleep(ctx, at.Sub(a.cfg.Clock())) {
				return nil
			}
			_, err = a.Renew(ctx)
			if errors.Is(err, ErrReattest) {
				a.log.WarnContext(ctx, "the CA requires attestation again", "reason", err, "method", a.cfg.Method)
				if a.cfg.Method == "" {
					return permanent(err, "give --method to let the agent attest again")
				}
				if _, eerr := a.Enroll(ctx); eerr != nil {
					err = fmt.Errorf("agent: attesting again (%v): %w", err, eerr)
				} else {
					err = nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			backoff = a.cfg.MinBackoff
			a.renewed(ctx)
			continue
		}
		if errors.Is(err, ErrPermanent) {
			return err
		}
		wait := backoff
		var se *ServerError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = se.RetryAfter
		}
		a.log.WarnContext(ctx, "certificate update failed; retrying", "error", err, "retry_in", wait)
		if !a.sleep(ctx, wait) {
			return nil
		}
		backoff = min(2*backoff, a.cfg.MaxBackoff)
	}
}

// renewed refreshes the bundle and runs the hook; failures are logged.
func (a *Agent) renewed(ctx context.Context) {
	if err := a.RefreshBundle(ctx); err != nil {
		a.log.WarnContext(ctx, "trust bundle refresh failed", "error", err)
	}
	if a.cfg.OnRenew != nil {
		if err := a.cfg.OnRenew(); err != nil {
			a.log.WarnContext(ctx, "on-renew hook failed", "error", err)
		}
	}
}
