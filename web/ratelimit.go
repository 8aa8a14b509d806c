package web

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/internal/ratelimit"
)

// Defaults of the per-source limit on the enrollment routes. A fleet
// behind one NAT address shares a bucket: raise them for such sites.
var (
	// DefaultSourceRateLimit admits 120 requests a minute per source
	// address (IPv6: per /64) after a burst of 60: a challenge and an
	// enrollment each take one.
	DefaultSourceRateLimit = ratelimit.Limit{PerMinute: 120, Burst: 60}
	// DefaultRenewalRateLimit admits 10 renewals in a row per worker, then
	// one every 30 seconds: an agent renews once per two thirds of a
	// lifetime, so only a broken or hostile worker meets it.
	DefaultRenewalRateLimit = ratelimit.Limit{PerMinute: 2, Burst: 10}
)

// ipExtractor returns how the server learns a request's source address:
// the TCP peer, or, when the peer is one of the trusted proxies, the
// right-most untrusted address of X-Forwarded-For. Headers from anyone
// else are ignored, so a client cannot pick its own rate-limit bucket.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// perSource wraps an enrollment handler in the per-source-address bucket.
// A refused request is answered 429 rate_limited with Retry-After before
// its body is read.
func (s *Server) perSource(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if wait := s.sources.Take(ratelimit.SourceKey(c.RealIP()), s.cfg.Clock()); wait > 0 {
			s.cfg.Metrics.rateLimited.WithLabelValues("source").Inc()
			return rateLimited("too many enrollment requests from this address", wait)
		}
		return next(c)
	}
}

// perWorkerRenewal takes a token from the bucket of the worker (pool and
// worker ID, so a chain of renewals shares it) behind a renewal.
func (s *Server) perWorkerRenewal(c echo.Context, pool, worker string) error {
	if wait := s.renewals.Take(pool+"/"+worker, s.cfg.Clock()); wait > 0 {
		s.cfg.Metrics.rateLimited.WithLabelValues("renewal").Inc()
		return rateLimited("too many renewals for this worker", wait)
	}
	return nil
}

// rateLimited is the 429 answer; Retry-After is in whole seconds,
// rounded up (RFC 9110 §10.2.3).
func rateLimited(msg string, wait time.Duration) *Error {
	e := newError(http.StatusTooManyRequests, "rate_limited", msg)
	e.RetryAfter = wait
	return e
}
