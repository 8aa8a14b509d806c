package web_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

func sourceLimit(l ratelimit.Limit) option {
	return func(_ *fixture, _ *enroll.Config, wc *web.Config) { wc.SourceRateLimit = &l }
}

func trustedProxies(ps ...string) option {
	return func(_ *fixture, _ *enroll.Config, wc *web.Config) {
		for _, p := range ps {
			wc.TrustedProxies = append(wc.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

func (f *fixture) challenge(t *testing.T, headers map[string]string) response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: "/v1/enroll/challenge", headers: headers})
}

func wantRateLimited(t *testing.T, r response, retryAfter string) {
	t.Helper()
	wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if got := r.header.Get("Retry-After"); got != retryAfter {
		t.Fatalf("Retry-After = %q, want %q", got, retryAfter)
	}
}

// TestSourceRateLimit: the enrollment routes share one bucket per source
// address; past it they answer 429 rate_limited with Retry-After, a
// client cannot escape by sending X-Forwarded-For, other routes are not
// limited, and the bucket refills with time.
func TestSourceRateLimit(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, sourceLimit(ratelimit.Limit{PerMinute: 2, Burst: 3})) // a token per 30 s
		tok := f.token(t, "default", "w-1", "").Token

		for i := range 3 {
			if r := f.challenge(t, nil); r.status != http.StatusCreated {
				t.Fatalf("challenge %d of the burst: %d %s", i+1, r.status, r.body)
			}
		}
		before := f.ledger(t, f.admin)
		wantRateLimited(t, f.challenge(t, nil), "30")
		wantRateLimited(t, f.challenge(t, map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}), "30")
		wantRateLimited(t, f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256))), "30")
		wantRateLimited(t, f.postJSON(t, "/v1/enroll", "", map[string]any{"method": "token", "csr": "x", "evidence": map[string]string{"token": tok}}), "30")
		if after := f.ledger(t, f.admin); !before.equal(after) {
			t.Fatalf("a rate-limited request changed the ledger:\nbefore %+v\nafter  %+v", before, after)
		}
		if r := f.do(t, request{method: http.MethodGet, path: "/v1/bundle"}); r.status != http.StatusOK {
			t.Fatalf("GET /v1/bundle while limited: %d, want 200 (not an enrollment route)", r.status)
		}

		f.clock.Add(29 * time.Second)
		wantRateLimited(t, f.challenge(t, nil), "1")
		f.clock.Add(time.Second)
		if r := f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256))); r.status != http.StatusCreated {
			t.Fatalf("enrollment after the refill: %d %s (the refused attempts must not consume the token)", r.status, r.body)
		}

		m := f.do(t, request{method: http.MethodGet, path: "/metrics", plain: true})
		if want := `workerca_rate_limited_total{limit="source"} 5`; !strings.Contains(string(m.body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	})
}

// TestSourceRateLimitBehindTrustedProxy: with the peer a trusted proxy,
// X-Forwarded-For names the client, so two clients behind the proxy have
// their own buckets; the right-most untrusted address counts, so a
// client-supplied left-most entry changes nothing.
func TestSourceRateLimitBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, sourceLimit(ratelimit.Limit{PerMinute: 1, Burst: 1}), trustedProxies("127.0.0.0/8"))
		a := map[string]string{"X-Forwarded-For": "198.51.100.1"}
		b := map[string]string{"X-Forwarded-For": "198.51.100.2"}
		aSpoofing := map[string]string{"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
		if r := f.challenge(t, a); r.status != http.StatusCreated {
			t.Fatalf("client a: %d %s", r.status, r.body)
		}
		wantRateLimited(t, f.challenge(t, a), "60")
		wantRateLimited(t, f.challenge(t, aSpoofing), "60")
		if r := f.challenge(t, b); r.status != http.StatusCreated {
			t.Fatalf("client b behind the same proxy: %d %s, want its own bucket", r.status, r.body)
		}
	})
}

// TestSourceRateLimitIgnoresUntrustedForwardedFor: a peer that is not a
// trusted proxy cannot choose its bucket with X-Forwarded-For.
func TestSourceRateLimitIgnoresUntrustedForwardedFor(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, sourceLimit(ratelimit.Limit{PerMinute: 1, Burst: 1}), trustedProxies("10.0.0.0/8"))
		if r := f.challenge(t, map[string]string{"X-Forwarded-For": "198.51.100.1"}); r.status != http.StatusCreated {
			t.Fatalf("first: %d %s", r.status, r.body)
		}
		wantRateLimited(t, f.challenge(t, map[string]string{"X-Forwarded-For": "198.51.100.2"}), "60")
	})
}

// TestSourceRateLimitDefault: a server configured without a limit gets
// DefaultSourceRateLimit, not none.
func TestSourceRateLimitDefault(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, func(_ *fixture, _ *enroll.Config, wc *web.Config) { wc.SourceRateLimit = nil })
		for i := range web.DefaultSourceRateLimit.Burst {
			if r := f.challenge(t, nil); r.status != http.StatusCreated {
				t.Fatalf("challenge %d of the default burst: %d %s", i+1, r.status, r.body)
			}
		}
		wantRateLimited(t, f.challenge(t, nil), "1")
	})
}

// TestPoolRateLimitOverHTTPS: the pool's enrollment bucket answers 429
// with Retry-After once the evidence verified, records nothing, and is
// counted as an issuance outcome.
func TestPoolRateLimitOverHTTPS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, func(_ *fixture, ec *enroll.Config, _ *web.Config) {
			ec.Pools[0].RateLimit = ratelimit.Limit{PerMinute: 0.5, Burst: 1} // "default": a token per 2 min
		})
		f.mustEnroll(t, "default", "w-1")
		tok := f.token(t, "default", "w-2", "").Token
		before := f.ledger(t, f.admin)
		wantRateLimited(t, f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256))), "120")
		if after := f.ledger(t, f.admin); !before.equal(after) {
			t.Fatal("a pool-limited enrollment changed the ledger")
		}
		f.mustEnroll(t, "capped", "w-1") // another pool is not limited
		f.clock.Add(2 * time.Minute)
		if r := f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256))); r.status != http.StatusCreated {
			t.Fatalf("after the refill: %d %s", r.status, r.body)
		}
		m := f.do(t, request{method: http.MethodGet, path: "/metrics", plain: true})
		if want := `workerca_issuance_total{method="token",outcome="rate_limited",pool="default"} 1`; !strings.Contains(string(m.body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	})
}

// TestRenewalRateLimit: renewals are limited per worker (pool and worker
// ID, so a chain of renewals shares one bucket): past the burst a worker
// gets 429 rate_limited with Retry-After and no certificate, another
// worker is not affected, and the bucket refills with time.
func TestRenewalRateLimit(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, func(_ *fixture, _ *enroll.Config, wc *web.Config) {
			wc.RenewalRateLimit = &ratelimit.Limit{PerMinute: 1, Burst: 2}
		})
		renew := func(cert *tls.Certificate) response {
			key := catest.Key(t, ca.KeyP256)
			b, _ := json.Marshal(map[string]string{"csr": string(csrPEM(t, key))})
			r := f.do(t, request{method: http.MethodPost, path: "/v1/renew", cert: cert, contentType: "application/json", body: b})
			return r
		}
		w1, _ := f.workerCert(t, "default", "w-1")
		w2, _ := f.workerCert(t, "default", "w-2")
		if r := renew(w1); r.status != http.StatusCreated {
			t.Fatalf("first renewal: %d %s", r.status, r.body)
		}
		if r := renew(w1); r.status != http.StatusCreated {
			t.Fatalf("second renewal: %d %s", r.status, r.body)
		}
		before := f.ledger(t, f.admin)
		wantRateLimited(t, renew(w1), "60")
		if after := f.ledger(t, f.admin); !after.equal(before) {
			t.Fatalf("a refused renewal changed the ledger: %+v -> %+v", before, after)
		}
		if r := renew(w2); r.status != http.StatusCreated {
			t.Fatalf("another worker's renewal: %d %s", r.status, r.body)
		}
		f.clock.Add(time.Minute)
		if r := renew(w1); r.status != http.StatusCreated {
			t.Fatalf("renewal after a minute: %d %s", r.status, r.body)
		}
	})
}
