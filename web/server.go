package web

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
)

// MaxBodyBytes caps every request body (64 KiB).
const MaxBodyBytes = 64 << 10

// Store is what the HTTP edge reads and writes directly: API keys and
// ledger rows. Issuance goes through package enroll.
type Store interface {
	keyReader
	keyCreator
	ListAPIKeys(ctx context.Context) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, at time.Time, audit store.AuditEvent) error
	Certificate(ctx context.Context, serial string) (*store.Certificate, error)
	WorkerCertificates(ctx context.Context, q store.WorkerQuery) ([]store.Certificate, string, error)
	Ping(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	// Enroll is the registration authority. Required.
	Enroll *enroll.Service
	// Revocation revokes and publishes status (CRLs, OCSP, JSON).
	// Required. Run starts it.
	Revocation *revocation.Service
	// Registry registers artifact signatures and signs their receipts.
	// Required.
	Registry *registry.Registry
	// Store holds API keys and the ledger. Required.
	Store Store
	// Roots is the trust bundle served at /v1/bundle. Required.
	Roots []*x509.Certificate
	// Intermediates are served at /v1/intermediates. Required.
	Intermediates []*x509.Certificate
	// Metrics is the Prometheus registry; nil makes a fresh one.
	Metrics *Metrics
	// Logger receives JSON request logs; nil means discard.
	Logger *slog.Logger
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Rand is the source for API key secrets; nil means crypto/rand.
	Rand io.Reader
	// SourceRateLimit is the token bucket each source address (IPv6: each
	// /64) gets on the enrollment routes: POST /v1/enroll/challenge,
	// /v1/enroll and /v1/enroll/token. Nil means
	// DefaultSourceRateLimit; a pointer to the zero Limit means none.
	SourceRateLimit *ratelimit.Limit
	// RenewalRateLimit is the token bucket of each worker (pool and
	// worker ID) on POST /v1/renew; nil means DefaultRenewalRateLimit; a
	// pointer to the zero Limit means none.
	RenewalRateLimit *ratelimit.Limit
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For names the client; empty means the TCP peer is the
	// client and the header is ignored.
	TrustedProxies []netip.Prefix
}

// Server is workerca's HTTP edge.
type Server struct {
	cfg   Config
	roots *x509.CertPool
	// intermediates are ours, for verifying worker client certificates.
	interPool *x509.CertPool
	log       *slog.Logger
	echo      *echo.Echo
	routes    []route
	// sources is the per-source-address bucket set of the enrollment
	// routes; nil when unlimited.
	sources *ratelimit.Keyed
	// renewals is the per-worker bucket set of POST /v1/renew; nil when
	// unlimited.
	renewals *ratelimit.Keyed
	// idPrefix (hex) and idCounter make request IDs (newRequestID).
	idPrefix  [16]byte
	idCounter atomic.Uint32
}

// route is one entry of the route table: every registered route has an
// explicit access rule, and public marks the read-only routes the plain
// HTTP listener also serves.
type route struct {
	method, path string
	access       access
	public       bool
	handler      echo.HandlerFunc
}

// New checks cfg and builds the router.
func New(cfg Config) (*Server, error) {
	if cfg.Enroll == nil || cfg.Store == nil || cfg.Revocation == nil || cfg.Registry == nil {
		return nil, errors.New("web: enroll service, revocation service, artifact registry and store are required")
	}
	if len(cfg.Roots) == 0 || len(cfg.Intermediates) == 0 {
		return nil, errors.New("web: roots and intermediates are required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	limit := DefaultSourceRateLimit
	if cfg.SourceRateLimit != nil {
		limit = *cfg.SourceRateLimit
	}
	sources, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("web: source rate limit: %w", err)
	}
	renewLimit := DefaultRenewalRateLimit
	if cfg.RenewalRateLimit != nil {
		renewLimit = *cfg.RenewalRateLimit
	}
	renewals, err := ratelimit.NewKeyed(ratelimit.KeyedConfig{Limit: renewLimit})
	if err != nil {
		return nil, fmt.Errorf("web: renewal rate limit: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, echo: echo.New(), roots: x509.NewCertPool(), sources: sources, renewals: renewals}
	var prefix [8]byte
	if _, err := io.ReadFull(cfg.Rand, prefix[:]); err != nil {
		return nil, fmt.Errorf("web: request ID prefix: %w", err)
	}
	hex.Encode(s.idPrefix[:], prefix[:])
	for _, r := range cfg.Roots {
		s.roots.AddCert(r)
	}
	s.interPool = x509.NewCertPool()
	for _, ic := range cfg.Intermediates {
		s.interPool.AddCert(ic)
	}
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.errorHandler
	s.echo.IPExtractor = ipExtractor(cfg.TrustedProxies)
	s.echo.Use(
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: s.newRequestID}),
		s.accessLog, // outside recover, so a panic is logged and counted as its 500
		s.recover,
		middleware.BodyLimit(strconv.Itoa(MaxBodyBytes)),
	)
	s.routes = s.routeTable()
	for _, r := range s.routes {
		mw := []echo.MiddlewareFunc{s.listenerRule(r)}
		switch r.access.kind {
		case accessAPIKey:
			mw = append(mw, s.refuseWorker, s.requireAPIKey(r.access.scope))
		case accessWorker:
			mw = append(mw, s.requireWorker)
		case accessReadOrSelf:
			mw = append(mw, s.requireReadOrSelf)
		}
		s.echo.Add(r.method, r.path, r.handler, mw...)
	}
	return s, nil
}

func (s *Server) routeTable() []route {
	return []route{
		{http.MethodGet, "/healthz", anyone(), true, s.healthz},
		{http.MethodGet, "/readyz", anyone(), true, s.readyz},
		{http.MethodGet, "/metrics", anyone(), true, echo.WrapHandler(s.cfg.Metrics.handler())},
		{http.MethodGet, "/v1/bundle", anyone(), true, s.bundle},
		{http.MethodGet, "/v1/bundle.spiffe", anyone(), true, s.spiffeBundle},
		{http.MethodGet, "/v1/intermediates", anyone(), true, s.intermediates},
		{http.MethodGet, "/v1/intermediate.crt", anyone(), true, s.intermediateDER},
		{http.MethodGet, "/crl/:file", anyone(), true, s.crl},
		{http.MethodGet, "/ocsp/*", anyone(), true, s.ocspGet},
		{http.MethodPost, "/ocsp", anyone(), true, s.ocspPost},
		{http.MethodGet, "/v1/status/keys", anyone(), true, s.statusKeys},
		{http.MethodGet, "/v1/status/:serial", anyone(), true, s.status},

		{http.MethodPost, "/v1/admin/api-keys", apiKey(ScopeAdmin), false, s.createAPIKey},
		{http.MethodGet, "/v1/admin/api-keys", apiKey(ScopeAdmin), false, s.listAPIKeys},
		{http.MethodDelete, "/v1/admin/api-keys/:id", apiKey(ScopeAdmin), false, s.revokeAPIKey},
		{http.MethodPost, "/v1/admin/tokens", apiKey(ScopeTokensCreate), false, s.createToken},
		{http.MethodGet, "/v1/admin/certificates/:serial", apiKey(ScopeRead), false, s.getCertificate},
		{http.MethodPost, "/v1/admin/revocations", apiKey(ScopeRevoke), false, s.revoke},
		{http.MethodPost, "/v1/admin/tpm/eks", apiKey(ScopeAdmin), false, s.registerTPMEK},
		{http.MethodGet, "/v1/admin/tpm/eks", apiKey(ScopeRead), false, s.listTPMEKs},
		{http.MethodDelete, "/v1/admin/tpm/eks/:hash", apiKey(ScopeAdmin), false, s.unregisterTPMEK},

		{http.MethodPost, "/v1/enroll/token", enrollmentToken(), false, s.perSource(s.enrollToken)},
		{http.MethodPost, "/v1/enroll/challenge", anyone(), false, s.perSource(s.createChallenge)},
		{http.MethodPost, "/v1/enroll", evidence(), false, s.perSource(s.enrollJSON)},
		{http.MethodPost, "/v1/enroll/tpm/start", evidence(), false, s.perSource(s.tpmStart)},
		{http.MethodPost, "/v1/enroll/tpm/finish", evidence(), false, s.perSource(s.tpmFinish)},
		{http.MethodPost, "/v1/renew", worker(), false, s.renew},
		{http.MethodPost, "/v1/revoke", worker(), false, s.revokeOwn},
		{http.MethodGet, "/v1/workers/:id/certificates", readOrSelf(), false, s.workerCertificates},
		{http.MethodPost, "/v1/artifacts", worker(), false, s.registerArtifact},
		{http.MethodGet, "/v1/artifacts/:sha256", anyone(), false, s.artifact},
	}
}

// RouteInfo describes one registered route and its access rule.
type RouteInfo struct {
	// Method and Path are as registered ("/v1/admin/certificates/:serial").
	Method, Path string
	// Access is the rule: "anyone", "api-key:<scope>", "enrollment-token",
	// "attestation-evidence" or "worker-certificate".
	Access string
	// Public routes are also served on the plain HTTP listener.
	Public bool
}

// Routes lists every route with its access rule, for tests and docs.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, len(s.routes))
	for i, r := range s.routes {
		out[i] = RouteInfo{Method: r.method, Path: r.path, Access: r.access.String(), Public: r.public}
	}
	return out
}

// Handler returns the router, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// listenerRule refuses non-public routes on the plain HTTP listener.
func (s *Server) listenerRule(r route) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !r.public && c.Request().TLS == nil {
				return newError(http.StatusForbidden, "https_required", "this route is served only on the HTTPS listener")
			}
			return next(c)
		}
	}
}

// recover turns a panic into a logged 500; no panic reaches a caller.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.ErrorContext(c.Request().Context(), "panic in handler", "request_id", requestID(c), "panic", fmt.Sprint(r))
				err = newError(http.StatusInternalServerError, "internal_error", "internal error")
			}
		}()
		return next(c)
	}
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := s.cfg.Clock()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		s.cfg.Metrics.requests.WithLabelValues(c.Path(), strconv.Itoa(status)).Inc()
		level := slog.LevelInfo
		if status < http.StatusBadRequest && quietRoute(c.Path()) {
			level = slog.LevelDebug
		}
		ctx := c.Request().Context()
		if !s.log.Enabled(ctx, level) {
			return nil
		}
		s.log.LogAttrs(ctx, level, "request",
			slog.String("request_id", requestID(c)), slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path), slog.Int("status", status),
			slog.String("remote", c.RealIP()), slog.Bool("tls", c.Request().TLS != nil),
			slog.Duration("duration", s.cfg.Clock().Sub(start)))
		return nil
	}
}

// quietRoute reports whether a route answers relying parties at high
// volume from memory (OCSP, CRLs): its successful requests are logged at
// debug level only (a line per OCSP answer costs the responder about a
// tenth of its CPU); workerca_http_requests_total counts them all, and
// their failures are logged as any other.
func quietRoute(path string) bool {
	return path == "/ocsp/*" || path == "/ocsp" || path == "/crl/:file"
}

// newRequestID is a 24-hex-digit request ID: 8 random bytes drawn once
// per server (so IDs of replicas and restarts do not collide) and a
// 4-byte counter. A request ID names a log line; it is no secret, so it
// costs no read of the system's randomness per request (that was a
// system call on every OCSP answer).
func (s *Server) newRequestID() string {
	var b [24]byte
	copy(b[:16], s.idPrefix[:])
	n := uint32(s.idCounter.Add(1))
	const digits = "0123456789abcdef"
	for i := 23; i >= 16; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}

// RunConfig says where and how Run serves.
type RunConfig struct {
	// HTTPS serves every route with TLS. Required.
	HTTPS net.Listener
	// HTTP serves the public read-only routes in the clear; nil means no
	// plain listener.
	HTTP net.Listener
	// DNSNames and IPAddresses go into the server certificate.
	DNSNames    []string
	IPAddresses []net.IP
	// CertTTL is the server certificate's lifetime; 0 means 24 hours. It
	// is renewed after two thirds of it.
	CertTTL time.Duration
	// ShutdownTimeout bounds graceful shutdown; 0 means 10 seconds.
	ShutdownTimeout time.Duration
}

// Run issues the server certificate, serves until ctx is done, then shuts
// down gracefully: in-flight requests finish, new ones are refused.
func (s *Server) Run(ctx context.Context, rc RunConfig) error {
	if rc.HTTPS == nil {
		return errors.New("web: an HTTPS listener is required")
	}
	certs, err := newCertManager(ctx, certManagerConfig{
		Issue: s.cfg.Enroll.IssueServer, DNSNames: rc.DNSNames, IPAddresses: rc.IPAddresses,
		TTL: rc.CertTTL, Clock: s.cfg.Clock, Logger: s.log,
	})
	if err != nil {
		closeListeners(rc.HTTPS, rc.HTTP)
		return err
	}
	if err := s.cfg.Revocation.Start(ctx); err != nil {
		closeListeners(rc.HTTPS, rc.HTTP)
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go certs.renewLoop(runCtx)
	revDone := make(chan struct{})
	go func() { s.cfg.Revocation.Run(runCtx); close(revDone) }()
	defer func() { stop(); <-revDone }()

	errc := make(chan error, 2)
	httpsSrv := s.httpServer(certs.tlsConfig())
	servers := []*http.Server{httpsSrv}
	go func() { errc <- httpsSrv.ServeTLS(rc.HTTPS, "", "") }()
	if rc.HTTP != nil {
		plainSrv := s.httpServer(nil)
		servers = append(servers, plainSrv)
		go func() { errc <- plainSrv.Serve(rc.HTTP) }()
	}
	s.log.Info("serving", "https", rc.HTTPS.Addr().String(), "http", addrOf(rc.HTTP))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	timeout := rc.ShutdownTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil && serveErr == nil {
			serveErr = fmt.Errorf("web: shutdown: %w", err)
		}
	}
	s.log.Info("stopped")
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

func (s *Server) httpServer(tc *tls.Config) *http.Server {
	return &http.Server{
		Handler:           s.echo,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// closeListeners closes the listeners Run was given when it fails before
// serving on them, so the caller's ports are freed.
func closeListeners(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			_ = l.Close()
		}
	}
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
