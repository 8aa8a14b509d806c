package gcpiit

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Caching of the fetched key set.
const (
	// RefetchInterval is the least time between two fetches of the key
	// set other than on expiry: a token with an unknown kid triggers a
	// refetch at most this often, and after a failed fetch a stale set is
	// used for this long before the next attempt. It is also the least
	// time a fetched set is considered fresh, whatever Cache-Control says.
	RefetchInterval = time.Minute
	// MaxStale is how long past its Cache-Control max-age a fetched set
	// is still used while fetches fail. After that, Verify fails closed
	// with ErrKeysUnavailable.
	MaxStale = 24 * time.Hour
	// DefaultKeySetTTL is the freshness of a set whose response carries
	// no Cache-Control max-age.
	DefaultKeySetTTL = time.Hour
	// maxKeySetTTL caps a Cache-Control max-age (Google sends some hours).
	maxKeySetTTL = 24 * time.Hour
	// maxKeySetBytes caps the key set response (Google's is about 2 KB).
	maxKeySetBytes = 1 << 20
)

// remoteKeySet fetches the key set over HTTPS and caches it per the
// response's Cache-Control max-age (RFC 9111 §5.2.2.1) less its Age
// (RFC 9111 §5.1). At most one fetch runs at a time; requests that wait
// for it use its result instead of fetching again.
type remoteKeySet struct {
	url    string
	client *http.Client
	clock  func() time.Time
	sem    chan struct{} // capacity 1, held while fetching

	mu sync.Mutex
	st cacheState
}

// cacheState is a snapshot of the cache.
type cacheState struct {
	keys        keySet    // last good set; nil before the first success
	freshUntil  time.Time // keys are fresh until then
	lastAttempt time.Time // when the last completed fetch began
	attempts    uint64    // completed fetches, successful or not
	lastErr     error     // the last fetch's error, nil if it succeeded
}

func newRemoteKeySet(url string, client *http.Client, clock func() time.Time) *remoteKeySet {
	return &remoteKeySet{url: url, client: client, clock: clock, sem: make(chan struct{}, 1)}
}

func (r *remoteKeySet) snapshot() cacheState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// usable reports whether st holds a set that may still be used at now.
func (st cacheState) usable(now time.Time) bool {
	return st.keys != nil && now.Before(st.freshUntil.Add(MaxStale))
}

func (r *remoteKeySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	now := r.clock()
	st := r.snapshot()
	recent := st.attempts > 0 && now.Sub(st.lastAttempt) < RefetchInterval
	switch {
	case st.keys != nil && now.Before(st.freshUntil):
		if k := st.keys[kid]; k != nil {
			return k, nil
		}
		if recent {
			return nil, fmt.Errorf("%w: key ID %q is not in Google's key set (fetched %s ago; next refetch in at most %s)",
				ErrSignature, kid, now.Sub(st.lastAttempt), RefetchInterval)
		}
	case st.usable(now) && recent:
		// Stale, and the last attempt failed moments ago: keep using
		// the set rather than fetch on every request.
		return st.lookup(kid)
	}
	st, err := r.refresh(ctx, st.attempts)
	if !st.usable(r.clock()) {
		if err == nil {
			err = st.lastErr
		}
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
	}
	return st.lookup(kid)
}

func (st cacheState) lookup(kid string) (*rsa.PublicKey, error) {
	if k := st.keys[kid]; k != nil {
		return k, nil
	}
	if st.lastErr != nil {
		return nil, fmt.Errorf("%w: key ID %q is not in the cached Google key set (refreshing it failed: %v)", ErrSignature, kid, st.lastErr)
	}
	return nil, fmt.Errorf("%w: key ID %q is not in Google's key set", ErrSignature, kid)
}

// refresh fetches the set unless a fetch completed since the caller's
// snapshot (seen), and returns the resulting state with the error of its
// own fetch, if it made one.
func (r *remoteKeySet) refresh(ctx context.Context, seen uint64) (cacheState, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return r.snapshot(), ctx.Err()
	}
	defer func() { <-r.sem }()
	if st := r.snapshot(); st.attempts != seen {
		return st, nil // another request fetched while this one waited
	}
	start := r.clock()
	keys, ttl, err := r.fetch(ctx, start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		// The caller gave up; that says nothing about Google. Leave
		// the state alone so the next request tries again.
		return r.st, err
	}
	r.st.attempts++
	r.st.lastAttempt = start
	r.st.lastErr = err
	if err == nil {
		r.st.keys = keys
		r.st.freshUntil = start.Add(ttl)
	}
	return r.st, err
}

// fetch GETs the key set and returns it with its freshness lifetime.
func (r *remoteKeySet) fetch(ctx context.Context, now time.Time) (keySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Scheme != "https" {
		return nil, 0, fmt.Errorf("GET %s: redirected to non-HTTPS %s", r.url, resp.Request.URL.Redacted())
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %v", r.url, err)
	}
	if len(body) > maxKeySetBytes {
		return nil, 0, fmt.Errorf("GET %s: key set larger than %d bytes", r.url, maxKeySetBytes)
	}
	keys, err := parseKeySet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %v", r.url, err)
	}
	return keys, freshness(resp.Header), nil
}

// freshness is the response's freshness lifetime: Cache-Control max-age
// less Age (RFC 9111 §4.2.1, §4.2.3), DefaultKeySetTTL without max-age,
// zero for no-store or no-cache; then bounded to [RefetchInterval,
// 24h].
func freshness(h http.Header) time.Duration {
	ttl, ok := maxAge(h.Values("Cache-Control"))
	if !ok {
		ttl = DefaultKeySetTTL
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, int64(maxKeySetTTL/time.Second))) * time.Second
	}
	return min(max(ttl, RefetchInterval), maxKeySetTTL)
}

// maxAge returns the smallest max-age in the Cache-Control header values,
// or 0 for no-store / no-cache; ok is false when there is neither.
func maxAge(values []string) (ttl time.Duration, ok bool) {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(arg), `"`), 10, 64)
				if err != nil || secs < 0 {
					return 0, true // invalid: treat as stale (RFC 9111 §4.2.1)
				}
				d := time.Duration(min(secs, int64(maxKeySetTTL/time.Second))) * time.Second
				if !ok || d < ttl {
					ttl, ok = d, true
				}
			}
		}
	}
	return ttl, ok
}
