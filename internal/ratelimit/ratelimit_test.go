package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/internal/ratelimit"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestLimitCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit ratelimit.Limit
		ok    bool
	}{
		{"ok/unlimited", ratelimit.Limit{}, true},
		{"ok/one-per-minute", ratelimit.Limit{PerMinute: 1, Burst: 1}, true},
		{"ok/fraction", ratelimit.Limit{PerMinute: 0.5, Burst: 3}, true},
		{"fail/burst-without-rate", ratelimit.Limit{Burst: 5}, false},
		{"fail/negative-rate", ratelimit.Limit{PerMinute: -1, Burst: 5}, false},
		{"fail/zero-burst", ratelimit.Limit{PerMinute: 60}, false},
		{"fail/negative-burst", ratelimit.Limit{PerMinute: 60, Burst: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limit.Check()
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%+v) = %v, want ok=%v", tc.limit, err, tc.ok)
			}
			if _, berr := ratelimit.NewBucket(tc.limit); (berr == nil) != tc.ok {
				t.Fatalf("NewBucket(%+v) = %v, want ok=%v", tc.limit, berr, tc.ok)
			}
			if _, kerr := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: tc.limit}); (kerr == nil) != tc.ok {
				t.Fatalf("NewKeyed(%+v) = %v, want ok=%v", tc.limit, kerr, tc.ok)
			}
		})
	}
}

func TestBucketBurstThenRefill(t *testing.T) {
	t.Parallel()
	b, err := ratelimit.NewBucket(ratelimit.Limit{PerMinute: 6, Burst: 3}) // one token per 10 s
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if w := b.Take(epoch); w != 0 {
			t.Fatalf("take %d of the burst: wait %v, want 0", i+1, w)
		}
	}
	if w := b.Take(epoch); w != 10*time.Second {
		t.Fatalf("take past the burst: wait %v, want 10s", w)
	}
	// A refused take takes nothing: 4 s later the wait is 6 s, not 16 s.
	if w := b.Take(epoch.Add(4 * time.Second)); w != 6*time.Second {
		t.Fatalf("take 4s later: wait %v, want 6s", w)
	}
	if w := b.Take(epoch.Add(10 * time.Second)); w != 0 {
		t.Fatalf("take after the refill: wait %v, want 0", w)
	}
	if w := b.Take(epoch.Add(10 * time.Second)); w == 0 {
		t.Fatal("second take after one token's refill was admitted")
	}
}

func TestUnlimitedAdmitsEverything(t *testing.T) {
	t.Parallel()
	b, err := ratelimit.NewBucket(ratelimit.Limit{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if b.Take(epoch) != 0 || k.Take("192.0.2.1", epoch) != 0 {
			t.Fatal("an unlimited bucket refused a request")
		}
	}
}

func TestKeyedKeysAreIndependent(t *testing.T) {
	t.Parallel()
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: ratelimit.Limit{PerMinute: 1, Burst: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Take("a", epoch) != 0 {
		t.Fatal("first take of a refused")
	}
	if w := k.Take("a", epoch); w != time.Minute {
		t.Fatalf("second take of a: wait %v, want 1m", w)
	}
	if k.Take("b", epoch) != 0 {
		t.Fatal("b was refused because a was drained")
	}
}

func TestKeyedForgetsRefilledBuckets(t *testing.T) {
	t.Parallel()
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: ratelimit.Limit{PerMinute: 60, Burst: 2}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		k.Take(fmt.Sprintf("198.51.100.%d", i), epoch)
	}
	if n := k.Len(); n != 50 {
		t.Fatalf("Len = %d after 50 keys, want 50", n)
	}
	// Two minutes later every bucket is full again; the next take sweeps.
	k.Take("203.0.113.1", epoch.Add(2*time.Minute))
	if n := k.Len(); n != 1 {
		t.Fatalf("Len = %d after the sweep, want 1 (only the new key)", n)
	}
}

func TestKeyedSharesOneBucketPastMaxKeys(t *testing.T) {
	t.Parallel()
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: ratelimit.Limit{PerMinute: 1, Burst: 1}, MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	k.Take("a", epoch)
	k.Take("b", epoch)
	// a and b are drained, so a sweep frees nothing: c and d share the
	// overflow bucket, and d is refused although it never asked before.
	if w := k.Take("c", epoch); w != 0 {
		t.Fatalf("c, first in the overflow bucket: wait %v, want 0", w)
	}
	if w := k.Take("d", epoch); w == 0 {
		t.Fatal("d was admitted from the drained overflow bucket")
	}
	if n := k.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3 (a, b, overflow)", n)
	}
}

func TestKeyedConcurrentTakesNeverExceedBurst(t *testing.T) {
	t.Parallel()
	k, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: ratelimit.Limit{PerMinute: 1, Burst: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for range 100 {
		wg.Go(func() {
			if k.Take("192.0.2.7", epoch) == 0 {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 10 {
		t.Fatalf("%d of 100 concurrent takes admitted, want the burst of 10", admitted)
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-address", "not-an-address"},
	} {
		if got := ratelimit.SourceKey(tc.in); got != tc.want {
			t.Errorf("SourceKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBucketReserveUndo(t *testing.T) {
	t.Parallel()
	b, err := ratelimit.NewBucket(ratelimit.Limit{PerMinute: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	wait, undo := b.Reserve(epoch)
	if wait != 0 || undo == nil {
		t.Fatalf("first reserve: wait %v", wait)
	}
	undo(epoch) // the request did not count
	for i := range 2 {
		if w, u := b.Reserve(epoch); w != 0 || u == nil {
			t.Fatalf("reserve %d after the undo: wait %v, want the full burst back", i+1, w)
		}
	}
	if w, u := b.Reserve(epoch); w != time.Minute || u != nil {
		t.Fatalf("reserve past the burst: wait %v undo %v, want 1m and no undo", w, u != nil)
	}
	if w := b.Take(epoch); w != time.Minute {
		t.Fatalf("a refused reserve took a token: wait %v", w)
	}
}
