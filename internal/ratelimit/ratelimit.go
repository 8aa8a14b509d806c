// Package ratelimit holds workerca's token buckets: one Bucket for a
// single limit (a pool's enrollments), and Keyed for one bucket per key
// (per source address) with bounded memory.
//
// Time is passed in on every call, so callers inject their clock and tests
// move it. The buckets are golang.org/x/time/rate limiters.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: PerMinute tokens are added each minute, up to
// Burst. The zero Limit is no limit at all.
type Limit struct {
	// PerMinute is the refill rate; 0 means unlimited.
	PerMinute float64
	// Burst is the bucket size: how many requests may arrive at once
	// after a quiet spell. At least 1 when PerMinute is set.
	Burst int
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.PerMinute == 0 }

// Check reports a limit that cannot work.
func (l Limit) Check() error {
	switch {
	case l.Unlimited() && l.Burst == 0:
		return nil
	case l.PerMinute <= 0 || math.IsNaN(l.PerMinute) || math.IsInf(l.PerMinute, 0):
		return fmt.Errorf("ratelimit: per_minute must be a positive number, got %v", l.PerMinute)
	case l.Burst < 1:
		return fmt.Errorf("ratelimit: burst must be at least 1, got %d", l.Burst)
	}
	return nil
}

func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%g/min, burst %d", l.PerMinute, l.Burst)
}

func (l Limit) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(l.PerMinute/60), l.Burst)
}

// wait is how long until limiter has one token at now.
func (l Limit) wait(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / (l.PerMinute / 60) * float64(time.Second)))
}

// Bucket is one token bucket, safe for concurrent use. A nil *Bucket or
// one with an unlimited Limit admits everything.
type Bucket struct {
	limit Limit
	mu    sync.Mutex
	lim   *rate.Limiter
}

// NewBucket returns a full bucket for l.
func NewBucket(l Limit) (*Bucket, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	if l.Unlimited() {
		return nil, nil
	}
	return &Bucket{limit: l, lim: l.limiter()}, nil
}

// Take takes one token at now. It returns 0 when the request may proceed,
// or how long until it could (the request is refused and takes nothing).
func (b *Bucket) Take(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lim.AllowN(now, 1) {
		return 0
	}
	return b.limit.wait(b.lim, now)
}

// Reserve takes one token at now like Take, and when it is admitted (wait
// 0) also returns undo, which gives the token back: for a request that
// turns out not to count, such as an enrollment refused after the check.
// undo is nil when the request is refused; it is safe to call once.
func (b *Bucket) Reserve(now time.Time) (wait time.Duration, undo func(at time.Time)) {
	if b == nil {
		return 0, func(time.Time) {}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return b.limit.wait(b.lim, now), nil
	}
	return 0, func(at time.Time) {
		b.mu.Lock()
		defer b.mu.Unlock()
		r.CancelAt(at)
	}
}

// DefaultMaxKeys bounds a Keyed set's memory when KeyedConfig.MaxKeys is 0.
const DefaultMaxKeys = 100_000

// sweepEvery is how often a Keyed set drops buckets that are full again.
const sweepEvery = time.Minute

// overflowKey names the bucket that keys share once MaxKeys distinct keys
// hold partly drained buckets.
const overflowKey = "\x00overflow"

// KeyedConfig configures a Keyed set.
type KeyedConfig struct {
	// Limit applies to each key separately.
	Limit Limit
	// MaxKeys caps the buckets held; 0 means DefaultMaxKeys. Past it, new
	// keys share one bucket until a sweep frees room.
	MaxKeys int
}

// Keyed is one token bucket per key (a source address), safe for
// concurrent use. A bucket that has refilled completely is forgotten, as a
// new one would be identical; memory stays bounded by MaxKeys.
type Keyed struct {
	limit     Limit
	maxKeys   int
	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewKeyed returns an empty set, or nil (admit everything) for an
// unlimited Limit.
func NewKeyed(cfg KeyedConfig) (*Keyed, error) {
	if err := cfg.Limit.Check(); err != nil {
		return nil, err
	}
	if cfg.MaxKeys < 0 {
		return nil, errors.New("ratelimit: max keys must not be negative")
	}
	if cfg.Limit.Unlimited() {
		return nil, nil
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	return &Keyed{limit: cfg.Limit, maxKeys: cfg.MaxKeys, buckets: map[string]*rate.Limiter{}}, nil
}

// Take takes one token from key's bucket at now: 0 when the request may
// proceed, else how long until it could.
func (k *Keyed) Take(key string, now time.Time) time.Duration {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) >= sweepEvery || now.Before(k.lastSweep) {
		k.sweep(now)
	}
	lim, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.maxKeys {
			k.sweep(now)
		}
		if len(k.buckets) >= k.maxKeys {
			key = overflowKey
			lim = k.buckets[key]
		}
		if lim == nil {
			lim = k.limit.limiter()
			k.buckets[key] = lim
		}
	}
	if lim.AllowN(now, 1) {
		return 0
	}
	return k.limit.wait(lim, now)
}

// Len is the number of buckets held.
func (k *Keyed) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// sweep forgets every bucket that is full at now.
func (k *Keyed) sweep(now time.Time) {
	k.lastSweep = now
	for key, lim := range k.buckets {
		if lim.TokensAt(now) >= float64(k.limit.Burst) {
			delete(k.buckets, key)
		}
	}
}

// SourceKey is the bucket key of a client address: the address itself
// for IPv4, its /64 for IPv6 (one host usually holds a whole /64). An
// unparsable address is its own key.
func SourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
