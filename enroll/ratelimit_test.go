package enroll_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestPoolRateLimit: a pool's enrollment bucket refuses past its burst
// on both enrollment paths, says when to retry, consumes nothing (the
// token works after the wait), and leaves other pools alone.
func TestPoolRateLimit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		limited := pool(t, "limited", 0, enroll.MethodToken)
		limited.RateLimit = ratelimit.Limit{PerMinute: 2, Burst: 2} // a token per 30 s
		f := newFixture(t, st, limited, pool(t, "open", 0, enroll.MethodToken))
		ctx := context.Background()

		if _, err := f.svc.EnrollToken(ctx, f.token(t, "limited", "w-1"), csrPEM(t, ca.KeyP256)); err != nil {
			t.Fatalf("first enrollment: %v", err)
		}
		if _, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Evidence: tokenEvidence(f.token(t, "limited", "w-2"))}); err != nil {
			t.Fatalf("second enrollment: %v", err)
		}

		tok := f.token(t, "limited", "w-3")
		for name, enrollOnce := range map[string]func() error{
			"EnrollToken": func() error { _, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256)); return err },
			"Enroll": func() error {
				_, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Evidence: tokenEvidence(tok)})
				return err
			},
		} {
			err := enrollOnce()
			var rl *enroll.RateLimitError
			if !errors.Is(err, enroll.ErrRateLimited) || !errors.As(err, &rl) {
				t.Fatalf("%s past the burst: err = %v, want a RateLimitError", name, err)
			}
			if rl.Pool != "limited" || rl.RetryAfter != 30*time.Second {
				t.Fatalf("%s: refusal %+v, want pool limited, retry after 30s", name, rl)
			}
		}
		if _, err := f.svc.EnrollToken(ctx, f.token(t, "open", "w-1"), csrPEM(t, ca.KeyP256)); err != nil {
			t.Fatalf("another pool was limited too: %v", err)
		}
		if n := f.activeWorkers(t, "limited"); n != 2 {
			t.Fatalf("%d active workers in the limited pool, want 2", n)
		}

		f.clock.Add(30 * time.Second)
		if _, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256)); err != nil {
			t.Fatalf("the refused token after the wait: %v (a refusal must not consume it)", err)
		}
	})
}

// TestPoolRateLimitCountsIssuedOnly: refused evidence, and verified
// evidence refused later (a bad key, a replay), take no token from the
// pool, so nobody can spend a pool's budget without getting certificates.
func TestPoolRateLimitCountsIssuedOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		limited := pool(t, "limited", 0, enroll.MethodToken)
		limited.RateLimit = ratelimit.Limit{PerMinute: 1, Burst: 1}
		f := newFixture(t, st, limited)
		ctx := context.Background()
		for range 5 {
			if _, err := f.svc.EnrollToken(ctx, "wct_bad.secret", csrPEM(t, ca.KeyP256)); !errors.Is(err, enroll.ErrTokenInvalid) {
				t.Fatalf("bad token: err = %v, want ErrTokenInvalid", err)
			}
		}
		tok := f.token(t, "limited", "w-1")
		for range 5 {
			if _, err := f.svc.EnrollToken(ctx, tok, catest.CSR(t, catest.WeakKey(t, "p224"))); !errors.Is(err, ca.ErrKeyNotAllowed) {
				t.Fatalf("P-224 key: err = %v, want ErrKeyNotAllowed", err)
			}
		}
		if _, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256)); err != nil {
			t.Fatalf("enrollment after refused attempts: %v", err)
		}
		for range 3 {
			if _, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256)); !errors.Is(err, enroll.ErrTokenUsed) {
				t.Fatalf("replayed token: err = %v, want ErrTokenUsed", err)
			}
		}
		if _, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Evidence: tokenEvidence(tok)}); !errors.Is(err, enroll.ErrTokenUsed) {
			t.Fatalf("replay through Enroll: err = %v, want ErrTokenUsed (not rate_limited: replays must not spend the budget)", err)
		}
	})
}

// TestPoolRateLimitMustWork: a limit that could never admit anything is
// a configuration error, not a pool that silently refuses.
func TestPoolRateLimitMustWork(t *testing.T) {
	t.Parallel()
	p := pool(t, "bad", 0, enroll.MethodToken)
	p.RateLimit = ratelimit.Limit{PerMinute: 10}
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	_, err := enroll.New(enroll.Config{Issuer: h.Issuer(t, ca.Config{}), Ledger: storetest.Open(t, store.DriverSQLite), TrustDomain: "workers.example.com", Pools: []enroll.Pool{p}})
	if err == nil || !strings.Contains(err.Error(), "burst") {
		t.Fatalf("enroll.New with burst 0: err = %v, want a burst error", err)
	}
}
