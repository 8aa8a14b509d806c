package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/web"
)

func TestSourceRateLimitConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     rateLimitsConfig
		want    ratelimit.Limit
		proxies []string
		err     string
	}{
		{"ok/default", rateLimitsConfig{}, web.DefaultSourceRateLimit, nil, ""},
		{"ok/set", rateLimitsConfig{PerSource: &limitConfig{PerMinute: 30, Burst: 5}}, ratelimit.Limit{PerMinute: 30, Burst: 5}, nil, ""},
		{"ok/unlimited", rateLimitsConfig{PerSource: &limitConfig{Unlimited: true}}, ratelimit.Limit{}, nil, ""},
		{"ok/proxies", rateLimitsConfig{TrustedProxies: []string{"10.0.0.0/8", "192.0.2.10", "2001:db8::1/64", "::ffff:198.51.100.7"}},
			web.DefaultSourceRateLimit, []string{"10.0.0.0/8", "192.0.2.10/32", "2001:db8::/64", "198.51.100.7/32"}, ""},
		{"fail/unlimited-and-rate", rateLimitsConfig{PerSource: &limitConfig{Unlimited: true, PerMinute: 1}}, ratelimit.Limit{}, nil, "unlimited excludes"},
		{"fail/empty-object", rateLimitsConfig{PerSource: &limitConfig{}}, ratelimit.Limit{}, nil, "per_minute > 0"},
		{"fail/no-burst", rateLimitsConfig{PerSource: &limitConfig{PerMinute: 10}}, ratelimit.Limit{}, nil, "burst >= 1"},
		{"fail/negative-rate", rateLimitsConfig{PerSource: &limitConfig{PerMinute: -1, Burst: 1}}, ratelimit.Limit{}, nil, "per_minute > 0"},
		{"fail/bad-proxy", rateLimitsConfig{TrustedProxies: []string{"proxy.example.com"}}, ratelimit.Limit{}, nil, "not an address or CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := fileConfig{RateLimits: tc.cfg}
			got, proxies, err := c.sourceRateLimit()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("limit = %v, want %v", got, tc.want)
			}
			var ps []string
			for _, p := range proxies {
				ps = append(ps, p.String())
			}
			if !slices.Equal(ps, tc.proxies) {
				t.Fatalf("proxies = %v, want %v", ps, tc.proxies)
			}
			for _, p := range proxies {
				if p != p.Masked() || !p.IsValid() {
					t.Fatalf("proxy %v is not a masked prefix", p)
				}
			}
		})
	}
}

func TestPoolRateLimitConfig(t *testing.T) {
	t.Parallel()
	c := fileConfig{Pools: []poolConfig{
		{Name: "default-limit", Methods: []string{"token"}},
		{Name: "own-limit", Methods: []string{"token"}, RateLimit: &limitConfig{PerMinute: 5, Burst: 2}},
		{Name: "no-limit", Methods: []string{"token"}, RateLimit: &limitConfig{Unlimited: true}},
	}}
	pools, err := c.pools(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []ratelimit.Limit{enroll.DefaultPoolRateLimit, {PerMinute: 5, Burst: 2}, {}}
	for i, p := range pools {
		if p.RateLimit != want[i] {
			t.Errorf("pool %s: limit %v, want %v", p.Name(), p.RateLimit, want[i])
		}
	}
	c = fileConfig{Pools: []poolConfig{{Name: "bad", Methods: []string{"token"}, RateLimit: &limitConfig{Burst: 3}}}}
	if _, err := c.pools(t.TempDir()); err == nil || !strings.Contains(err.Error(), "pool bad: rate_limit") {
		t.Fatalf("pool with burst only: err = %v, want a rate_limit error naming the pool", err)
	}
}

func TestRenewalRateLimitConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lc   *limitConfig
		want ratelimit.Limit
		err  string
	}{
		{"ok/default", nil, web.DefaultRenewalRateLimit, ""},
		{"ok/set", &limitConfig{PerMinute: 6, Burst: 3}, ratelimit.Limit{PerMinute: 6, Burst: 3}, ""},
		{"ok/unlimited", &limitConfig{Unlimited: true}, ratelimit.Limit{}, ""},
		{"fail/no-burst", &limitConfig{PerMinute: 6}, ratelimit.Limit{}, "rate_limits.per_worker_renewal: needs per_minute > 0 and burst >= 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := fileConfig{RateLimits: rateLimitsConfig{PerWorkerRenewal: tc.lc}}
			got, err := c.renewalRateLimit()
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			case tc.err == "" && (err != nil || got != tc.want):
				t.Fatalf("limit = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
