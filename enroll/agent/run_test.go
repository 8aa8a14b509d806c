package agent_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/syncbuf"
)

// wait is one wait Run asked its After for; the test fires it.
type wait struct {
	d    time.Duration
	fire chan time.Time
}

// gatedAfter is an After that hands every wait to the test, so the test
// decides when Run moves on and sees each duration asked for.
type gatedAfter struct {
	ctx   context.Context
	asked chan wait
}

func newGatedAfter(ctx context.Context) *gatedAfter {
	return &gatedAfter{ctx: ctx, asked: make(chan wait, 16)}
}

func (g *gatedAfter) After(d time.Duration) <-chan time.Time {
	w := wait{d: d, fire: make(chan time.Time, 1)}
	select {
	case g.asked <- w:
	case <-g.ctx.Done():
	}
	return w.fire
}

// running is Run in a goroutine.
type running struct {
	done chan struct{}
	err  error
}

// startRun runs a until ctx ends; the test's cleanup cancels ctx and
// waits for Run to return.
func startRun(t *testing.T, ctx context.Context, cancel context.CancelFunc, a *agent.Agent) *running {
	r := &running{done: make(chan struct{})}
	go func() { defer close(r.done); r.err = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// next is the next wait Run asks for; Run returning instead fails the test.
func (g *gatedAfter) next(t *testing.T, r *running) wait {
	t.Helper()
	select {
	case w := <-g.asked:
		return w
	case <-r.done:
		t.Fatalf("Run returned (%v) instead of waiting", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run asked for no wait in 30s")
	}
	return wait{}
}

// requireRenewWait checks that w, asked for at some instant in
// [since, now], waits until RenewAt of leaf: two thirds of the lifetime,
// earlier by at most the default jitter of a tenth of it.
func requireRenewWait(t *testing.T, leaf *x509.Certificate, w wait, since time.Time) {
	t.Helper()
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	latest := leaf.NotBefore.Add(life * 2 / 3)
	earliest := latest.Add(-life / 10)
	if time.Now().Add(w.d).Before(earliest) || since.Add(w.d).After(latest) {
		t.Fatalf("renewal wait %s ends outside [%s, %s] (lifetime %s)", w.d, earliest.Format(time.RFC3339), latest.Format(time.RFC3339), life)
	}
}

// requireEnrolled checks that dir still holds all four files and that
// cert.pem is the certificate with serial want.
func requireEnrolled(t *testing.T, dir string, want *x509.Certificate) {
	t.Helper()
	for _, f := range []string{agent.FileKey, agent.FileCert, agent.FileChain, agent.FileBundle} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s gone while the CA is down: %v", f, err)
		}
	}
	tc, err := agent.LoadCertificate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Leaf.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Fatalf("cert.pem has serial %x, want %x", tc.Leaf.SerialNumber, want.SerialNumber)
	}
}

// TestRunBacksOff drives Run's retry loop against a real CA: through an
// outage of the CA process, and through the CA's 429 with Retry-After.
func TestRunBacksOff(t *testing.T) {
	t.Parallel()

	// The CA process stops just before a renewal: Run keeps the files,
	// retries with doubling waits up to MaxBackoff, and renews once the CA
	// is back on the same address.
	t.Run("fail-then-recover/ca-down", func(t *testing.T) {
		t.Parallel()
		ca := devca.Start(t, workercaBin, func(pool map[string]any) { pool["ttl"] = "1m" })
		a0 := newAgent(t, ca, agent.Config{Pin: agent.SPKIPin(ca.Root), TokenFile: ca.Token(t, "host-down")})
		first, err := a0.Enroll(t.Context())
		if err != nil {
			t.Fatal(err)
		}

		const minBackoff, maxBackoff, failures = 10 * time.Millisecond, 80 * time.Millisecond, 6
		ctx, cancel := context.WithCancel(t.Context())
		after := newGatedAfter(ctx)
		renewed := make(chan struct{}, 8)
		a := newAgent(t, ca, agent.Config{Dir: a0.Dir(), TokenFile: "/nonexistent",
			MinBackoff: minBackoff, MaxBackoff: maxBackoff, After: after.After,
			OnRenew: func() error { renewed <- struct{}{}; return nil }})
		since := time.Now()
		r := startRun(t, ctx, cancel, a)

		w := after.next(t, r)
		requireRenewWait(t, first.Leaf, w, since)
		ca.Stop(t)
		since = time.Now()
		w.fire <- since

		// Each failed attempt is followed by a backoff wait, then by the
		// wait until RenewAt again (still ahead by the real clock, since the
		// test fired the first one early), each fired at once.
		var backoffs []time.Duration
		for len(backoffs) < failures {
			w := after.next(t, r)
			backoffs = append(backoffs, w.d)
			requireEnrolled(t, a.Dir(), first.Leaf)
			if len(backoffs) == failures {
				ca.Restart(t)
			}
			w.fire <- time.Now()
			w = after.next(t, r)
			requireRenewWait(t, first.Leaf, w, since)
			since = time.Now()
			w.fire <- since
		}
		if backoffs[0] != minBackoff {
			t.Errorf("first retry after %s, want MinBackoff %s (all: %v)", backoffs[0], minBackoff, backoffs)
		}
		for i := 1; i < len(backoffs); i++ {
			if prev, d := backoffs[i-1], backoffs[i]; d < prev || d > min(2*prev, maxBackoff) {
				t.Errorf("retry %d after %s following %s: want within [%s, %s] (all: %v)", i, d, prev, prev, min(2*prev, maxBackoff), backoffs)
			}
		}
		if last := backoffs[len(backoffs)-1]; last != maxBackoff {
			t.Errorf("backoff settled at %s, want MaxBackoff %s (all: %v)", last, maxBackoff, backoffs)
		}
		if len(renewed) != 0 {
			t.Fatalf("OnRenew ran while the CA was down")
		}

		// The CA is back: that attempt renews and Run goes on to wait for
		// the next renewal.
		select {
		case <-renewed:
		case <-r.done:
			t.Fatalf("Run returned (%v) instead of renewing after the CA came back", r.err)
		case <-time.After(30 * time.Second):
			t.Fatal("no renewal within 30s of the CA coming back")
		}
		tc, err := agent.LoadCertificate(a.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if tc.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			t.Fatal("OnRenew ran but cert.pem still holds the first certificate")
		}
		requireRenewWait(t, tc.Leaf, after.next(t, r), since)
		cancel()
		<-r.done
		if r.err != nil {
			t.Fatalf("Run after recovery and cancel: %v", r.err)
		}
	})

	// POST /v1/renew has no rate limit, but enrollment does (the pool's
	// bucket, and the per-source one): a Run that must enroll first meets
	// 429 rate_limited with Retry-After, waits that long rather than its
	// shorter backoff, and then enrolls with the same token.
	t.Run("retry-after/enroll-rate-limited", func(t *testing.T) {
		t.Parallel()
		ca := devca.Start(t, workercaBin, func(pool map[string]any) {
			pool["rate_limit"] = map[string]any{"per_minute": 30, "burst": 1} // one enrollment per 2s
		})
		pin := agent.SPKIPin(ca.Root)
		spend, tok := ca.Token(t, "host-rl-0"), ca.Token(t, "host-rl-1")
		if _, err := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: spend}).Enroll(t.Context()); err != nil {
			t.Fatal(err)
		}

		const minBackoff, maxBackoff = 10 * time.Millisecond, 20 * time.Millisecond
		ctx, cancel := context.WithCancel(t.Context())
		after := newGatedAfter(ctx)
		renewed := make(chan struct{}, 8)
		var logs syncbuf.Buffer
		a := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok,
			MinBackoff: minBackoff, MaxBackoff: maxBackoff, After: after.After,
			Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
			OnRenew: func() error { renewed <- struct{}{}; return nil }})
		r := startRun(t, ctx, cancel, a)

		w := after.next(t, r)
		if !strings.Contains(logs.String(), "429 rate_limited") {
			t.Fatalf("the first wait did not follow a 429 rate_limited:\n%s", logs.String())
		}
		if w.d < time.Second || w.d > 2*time.Second {
			t.Fatalf("waited %s after the 429; want the CA's Retry-After (1s or 2s), not the backoff (%s..%s)", w.d, minBackoff, maxBackoff)
		}
		if _, err := os.Stat(filepath.Join(a.Dir(), agent.FileCert)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cert.pem after a refused enrollment (stat: %v)", err)
		}
		w.fire <- <-time.After(w.d) // the bucket has refilled

		select {
		case <-renewed:
		case <-r.done:
			t.Fatalf("Run returned (%v) instead of enrolling after Retry-After\n%s", r.err, logs.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("no enrollment within 30s of Retry-After\n%s", logs.String())
		}
		tc, err := agent.LoadCertificate(a.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.Leaf.URIs[0].String(); got != "spiffe://dev.workerca.test/worker/default/host-rl-1" {
			t.Errorf("enrolled as %s", got)
		}
		after.next(t, r) // the wait for the first renewal
		cancel()
		<-r.done
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	})
}
