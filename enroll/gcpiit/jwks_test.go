package gcpiit_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
)

// cacheEnv is one provider, a verifier fetching from it, and the clock
// both share.
type cacheEnv struct {
	p     *gcpiittest.Provider
	clock *clock
	v     *gcpiit.Verifier
}

func newCacheEnv(t *testing.T) *cacheEnv {
	t.Helper()
	c := newClock(epoch)
	p := gcpiittest.NewProvider(t, gcpiittest.WithClock(c.Now))
	v, err := gcpiit.New(p.Config(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	return &cacheEnv{p: p, clock: c, v: v}
}

// verify verifies a token minted now with signing s and checks the error
// and the number of key set fetches so far.
func (e *cacheEnv) verify(t *testing.T, s gcpiittest.Signing, want error, fetches int) {
	t.Helper()
	tok := e.p.SignedToken(t, gcpiittest.Claims{Audience: aud}, s)
	_, err := e.v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
	checkErr(t, err, want)
	if got := e.p.Fetches(); got != fetches {
		t.Fatalf("key set fetched %d times, want %d", got, fetches)
	}
}

func TestKeySetCache(t *testing.T) {
	t.Parallel()
	const ok = gcpiittest.Valid
	tests := []struct {
		name string
		run  func(t *testing.T, e *cacheEnv)
	}{
		{"cache/fetched-once-within-max-age", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("public, max-age=600, must-revalidate, no-transform")
			e.verify(t, ok, nil, 1)
			e.verify(t, ok, nil, 1)
			e.clock.Advance(600*time.Second - time.Nanosecond)
			e.verify(t, ok, nil, 1)
		}},
		{"cache/refetched-when-max-age-passes", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=600")
			e.verify(t, ok, nil, 1)
			e.clock.Advance(600 * time.Second)
			e.verify(t, ok, nil, 2)
			e.clock.Advance(599 * time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"cache/age-header-shortens-freshness", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=600")
			e.p.SetAge(500 * time.Second)
			e.verify(t, ok, nil, 1)
			e.clock.Advance(99 * time.Second)
			e.verify(t, ok, nil, 1)
			e.clock.Advance(time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"cache/smallest-max-age-wins", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=3600, MAX-AGE=\"120\"")
			e.verify(t, ok, nil, 1)
			e.clock.Advance(120 * time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"cache/no-cache-control-uses-default-ttl", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("")
			e.verify(t, ok, nil, 1)
			e.clock.Advance(gcpiit.DefaultKeySetTTL - time.Second)
			e.verify(t, ok, nil, 1)
			e.clock.Advance(time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"cache/no-store-refetched-after-refetch-interval", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("no-store")
			e.verify(t, ok, nil, 1)
			e.clock.Advance(gcpiit.RefetchInterval - time.Second)
			e.verify(t, ok, nil, 1)
			e.clock.Advance(time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"cache/max-age-capped-at-a-day", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=31536000")
			e.verify(t, ok, nil, 1)
			e.clock.Advance(24 * time.Hour)
			e.verify(t, ok, nil, 2)
		}},
		{"rotate/new-kid-refetched", func(t *testing.T, e *cacheEnv) {
			e.verify(t, ok, nil, 1)
			e.clock.Advance(gcpiit.RefetchInterval)
			e.p.Rotate(t)
			e.verify(t, ok, nil, 2)
			e.verify(t, ok, nil, 2)
		}},
		{"rotate/new-kid-within-a-minute-of-a-fetch-waits", func(t *testing.T, e *cacheEnv) {
			e.verify(t, ok, nil, 1)
			e.p.Rotate(t)
			e.clock.Advance(gcpiit.RefetchInterval - time.Second)
			e.verify(t, ok, gcpiit.ErrSignature, 1)
			e.clock.Advance(time.Second)
			e.verify(t, ok, nil, 2)
		}},
		{"rotate/previous-key-still-verifies", func(t *testing.T, e *cacheEnv) {
			old := e.p.Token(t, gcpiittest.Claims{Audience: aud})
			e.p.Rotate(t)
			_, err := e.v.Verify(context.Background(), gcpiit.Evidence{Token: old}, gcpiit.Policy{Audience: aud})
			checkErr(t, err, nil)
		}},
		{"rotate/unknown-kid-refetched-at-most-once-a-minute", func(t *testing.T, e *cacheEnv) {
			e.verify(t, ok, nil, 1)
			e.clock.Advance(gcpiit.RefetchInterval)
			e.verify(t, gcpiittest.UnknownKid, gcpiit.ErrSignature, 2)
			e.verify(t, gcpiittest.UnknownKid, gcpiit.ErrSignature, 2)
			e.clock.Advance(gcpiit.RefetchInterval - time.Second)
			e.verify(t, gcpiittest.UnknownKid, gcpiit.ErrSignature, 2)
			e.clock.Advance(time.Second)
			e.verify(t, gcpiittest.UnknownKid, gcpiit.ErrSignature, 3)
			e.verify(t, ok, nil, 3)
		}},
		{"down/no-cache-is-unavailable", func(t *testing.T, e *cacheEnv) {
			e.p.SetDown(true)
			e.verify(t, ok, gcpiit.ErrKeysUnavailable, 1)
		}},
		{"down/no-cache-retried-on-next-request", func(t *testing.T, e *cacheEnv) {
			e.p.SetDown(true)
			e.verify(t, ok, gcpiit.ErrKeysUnavailable, 1)
			e.verify(t, ok, gcpiit.ErrKeysUnavailable, 2)
			e.p.SetDown(false)
			e.verify(t, ok, nil, 3)
		}},
		{"down/fresh-cache-still-verifies", func(t *testing.T, e *cacheEnv) {
			e.verify(t, ok, nil, 1)
			e.p.SetDown(true)
			e.verify(t, ok, nil, 1)
		}},
		{"down/unknown-kid-with-fresh-cache-is-signature-error", func(t *testing.T, e *cacheEnv) {
			e.verify(t, ok, nil, 1)
			e.p.SetDown(true)
			e.clock.Advance(gcpiit.RefetchInterval)
			e.verify(t, gcpiittest.UnknownKid, gcpiit.ErrSignature, 2)
		}},
		{"down/expired-cache-still-verifies", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=600")
			e.verify(t, ok, nil, 1)
			e.p.SetDown(true)
			e.clock.Advance(600 * time.Second)
			e.verify(t, ok, nil, 2) // the refetch failed; the expired set is used
			e.clock.Advance(gcpiit.RefetchInterval - time.Second)
			e.verify(t, ok, nil, 2) // no new attempt within a minute of the failure
			e.clock.Advance(time.Second)
			e.verify(t, ok, nil, 3)
			e.p.SetDown(false)
			e.clock.Advance(gcpiit.RefetchInterval)
			e.verify(t, ok, nil, 4) // recovered: fresh again for max-age
			e.clock.Advance(599 * time.Second)
			e.verify(t, ok, nil, 4)
		}},
		{"down/expired-cache-unusable-after-max-stale", func(t *testing.T, e *cacheEnv) {
			e.p.SetCacheControl("max-age=600")
			e.verify(t, ok, nil, 1)
			e.p.SetDown(true)
			e.clock.Advance(600*time.Second + gcpiit.MaxStale - time.Second)
			e.verify(t, ok, nil, 2)
			e.clock.Advance(time.Second)
			e.verify(t, ok, gcpiit.ErrKeysUnavailable, 3) // nothing usable: every request tries
			e.verify(t, ok, gcpiit.ErrKeysUnavailable, 4)
			e.p.SetDown(false)
			e.verify(t, ok, nil, 5)
		}},
		{"ctx/canceled-request-does-not-count-as-attempt", func(t *testing.T, e *cacheEnv) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			tok := e.p.Token(t, gcpiittest.Claims{Audience: aud})
			_, err := e.v.Verify(ctx, gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
			checkErr(t, err, gcpiit.ErrKeysUnavailable)
			e.verify(t, ok, nil, 1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newCacheEnv(t))
		})
	}
}

func TestKeySetCache_ConcurrentColdStartFetchesOnce(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	tok := e.p.Token(t, gcpiittest.Claims{Audience: aud})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := e.v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		checkErr(t, err, nil)
	}
	if n := e.p.Fetches(); n != 1 {
		t.Errorf("key set fetched %d times by 32 concurrent requests, want 1", n)
	}
}

// TestKeySetFetch_Refused checks that every bad key set response makes
// Verify fail with ErrKeysUnavailable.
func TestKeySetFetch_Refused(t *testing.T) {
	t.Parallel()
	p := gcpiittest.NewProvider(t)
	jwks := p.JWKS()
	tok := p.Token(t, gcpiittest.Claims{Audience: aud, IssuedAt: epoch})
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"fail/status-404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{"fail/status-500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
		{"fail/body-not-json", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hi</html>")) }},
		{"fail/body-empty-key-set", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"keys":[]}`)) }},
		{"fail/body-too-large", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`))
		}},
		{"fail/redirect-to-http", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+r.Host+"/certs", http.StatusFound)
		}},
		{"fail/truncated", func(w http.ResponseWriter, r *http.Request) { w.Write(jwks[:len(jwks)/2]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the redirect case logs a TLS error
			srv.StartTLS()
			t.Cleanup(srv.Close)
			v, err := gcpiit.New(gcpiit.Config{JWKSURL: srv.URL + "/certs", HTTPClient: srv.Client(), Clock: fixed(epoch)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
			checkErr(t, err, gcpiit.ErrKeysUnavailable)
		})
	}
	t.Run("fail/untrusted-tls-certificate", func(t *testing.T) {
		t.Parallel()
		v, err := gcpiit.New(gcpiit.Config{JWKSURL: p.JWKSURL(), HTTPClient: &http.Client{}, Clock: fixed(epoch)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
		checkErr(t, err, gcpiit.ErrKeysUnavailable)
	})
	t.Run("fail/server-closed", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		client, url := srv.Client(), srv.URL
		srv.Close()
		v, err := gcpiit.New(gcpiit.Config{JWKSURL: url, HTTPClient: client, Clock: fixed(epoch)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
		checkErr(t, err, gcpiit.ErrKeysUnavailable)
	})
	t.Run("ok/v1-certs-form-over-https", func(t *testing.T) {
		t.Parallel()
		v1, err := os.ReadFile(p.WriteV1CertsFile(t))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(v1) }))
		t.Cleanup(srv.Close)
		v, err := gcpiit.New(gcpiit.Config{JWKSURL: srv.URL + "/oauth2/v1/certs", HTTPClient: srv.Client(), Clock: fixed(epoch)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: aud})
		checkErr(t, err, nil)
	})
}
