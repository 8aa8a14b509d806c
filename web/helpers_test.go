package web_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/web"
)

var (
	_ web.Store       = (*store.Store)(nil)
	_ enroll.Observer = (*web.Metrics)(nil)
)

// trustDomain is the SPIFFE trust domain of every fixture.
const trustDomain = "workers.example.com"

// crlBaseURL and crlShards are the fixtures' CRL setting: the URL is
// only written into certificates and CRLs, never fetched.
const (
	crlBaseURL = "http://ca.workers.example.com"
	crlShards  = 4
)

// clock is a settable test clock shared by the issuer, the registration
// authority, the server and the TLS client.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// fixture is a real server, started with Server.Run on two loopback
// listeners, over a real store and an in-test CA hierarchy.
//
// Every clock is pinned to catest.Epoch, including the TLS client's
// (tls.Config.Time): the server certificate is issued at the pinned time
// and is verified at it, so the tests do not depend on the wall clock.
type fixture struct {
	st      *store.Store
	srv     *web.Server
	h       *catest.Hierarchy
	clock   *clock
	metrics *web.Metrics
	// httpsURL and httpURL are the listeners' base URLs.
	httpsURL, httpURL string
	client            *http.Client
	// admin is an API key with scope admin.
	admin string
	// rev is the revocation service; statusKey signs its JSON status.
	rev       *revocation.Service
	statusKey crypto.Signer

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
	runErr   error
}

// defaultPools are a pool without a cap and one capped at one worker,
// both accepting P-256 and Ed25519 keys only.
func defaultPools(t *testing.T) []enroll.Pool {
	return []enroll.Pool{pool(t, "default", 0), pool(t, "capped", 1)}
}

func pool(t *testing.T, name string, maxWorkers int) enroll.Pool {
	t.Helper()
	p, err := ca.NewProfile(ca.ProfileConfig{Name: name, TTL: 24 * time.Hour, KeyTypes: []ca.KeyType{ca.KeyP256, ca.KeyEd25519}})
	if err != nil {
		t.Fatal(err)
	}
	return enroll.Pool{Profile: p, MaxActiveWorkers: maxWorkers, Methods: []string{enroll.MethodToken}}
}

// option changes a fixture's configuration before the service and the
// server are built; the clock is already set.
type option func(f *fixture, ec *enroll.Config, wc *web.Config)

// newServer builds a web.Server over st with a fresh hierarchy and the
// default pools, applies opts, and does not start it.
func newServer(t *testing.T, st *store.Store, opts ...option) (*web.Server, *fixture) {
	t.Helper()
	f := &fixture{st: st, clock: &clock{now: catest.Epoch}, metrics: web.NewMetrics()}
	f.h = catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	ec := enroll.Config{
		Issuer: f.h.Issuer(t, ca.Config{Clock: f.clock.Now, CRLBaseURL: crlBaseURL, CRLShards: crlShards,
			OCSPURLs: []string{crlBaseURL + "/ocsp"}, IssuerURLs: []string{crlBaseURL + "/v1/intermediate.crt"}}),
		Ledger: st, TrustDomain: trustDomain,
		Pools: defaultPools(t), Clock: f.clock.Now, Observer: f.metrics,
	}
	wc := web.Config{
		// Tests send many enrollment requests from one address at one
		// pinned instant: no per-source limit unless a test sets one.
		SourceRateLimit: &ratelimit.Limit{},
		// Nor a per-worker renewal limit.
		RenewalRateLimit: &ratelimit.Limit{},
		Store:            st,
		Roots:            []*x509.Certificate{f.h.Root}, Intermediates: []*x509.Certificate{f.h.Intermediate},
		Metrics: f.metrics, Clock: f.clock.Now,
	}
	for _, o := range opts {
		o(f, &ec, &wc)
	}
	svc, err := enroll.New(ec)
	if err != nil {
		t.Fatalf("enroll.New: %v", err)
	}
	wc.Enroll = svc
	f.statusKey = catest.Key(t, ca.KeyP256)
	rev, err := revocation.New(revocation.Config{
		Ledger: st, Issuer: f.h.Intermediate, Signer: f.h.IntermediateKey,
		CRLBaseURL: crlBaseURL, CRLShards: crlShards, IssueResponder: svc.IssueResponder,
		StatusKey: f.statusKey, Clock: f.clock.Now,
	})
	if err != nil {
		t.Fatalf("revocation.New: %v", err)
	}
	wc.Revocation, f.rev = rev, rev
	if wc.Registry == nil {
		reg, err := registry.New(registry.Config{Ledger: st, ReceiptKey: f.statusKey, Clock: f.clock.Now})
		if err != nil {
			t.Fatalf("registry.New: %v", err)
		}
		wc.Registry = reg
	}
	srv, err := web.New(wc)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	f.srv = srv
	return srv, f
}

// start runs a server over st until the test ends, then checks that Run
// returns nil.
func start(t *testing.T, st *store.Store, opts ...option) *fixture {
	t.Helper()
	srv, f := newServer(t, st, opts...)
	httpsLn, httpLn := listen(t), listen(t)
	f.httpsURL, f.httpURL = "https://"+httpsLn.Addr().String(), "http://"+httpLn.Addr().String()
	f.client = &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: f.h.Roots(), Time: f.clock.Now, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan error, 1)
	go func() {
		f.done <- srv.Run(ctx, web.RunConfig{HTTPS: httpsLn, HTTP: httpLn, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	}()
	t.Cleanup(func() {
		if err := f.stop(t); err != nil {
			t.Errorf("Run returned %v after its context was canceled, want nil (graceful shutdown)", err)
		}
	})
	// The listeners are bound already; the first request waits for Run to
	// issue the server certificate and serve.
	if r := f.do(t, request{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
		t.Fatalf("GET /healthz on HTTPS: status %d, body %s", r.status, r.body)
	}
	f.admin = f.apiKey(t, web.ScopeAdmin)
	return f
}

// stop cancels Run's context and returns what Run returned.
func (f *fixture) stop(t *testing.T) error {
	t.Helper()
	f.stopOnce.Do(func() {
		f.cancel()
		f.client.CloseIdleConnections()
		select {
		case f.runErr = <-f.done:
		case <-time.After(20 * time.Second):
			f.runErr = errors.New("Run did not return within 20s of cancellation")
		}
	})
	return f.runErr
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// request is one HTTP request to a fixture.
type request struct {
	method, path string
	// auth is sent as "Authorization: Bearer <auth>" when not empty;
	// header overrides it.
	auth        string
	header      string
	contentType string
	body        []byte
	// chunked sends the body without a Content-Length.
	chunked bool
	// plain sends the request to the plain HTTP listener.
	plain bool
	// cert is presented as the TLS client certificate.
	cert *tls.Certificate
	// headers are set on the request.
	headers map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
	tls    *tls.ConnectionState
}

func (f *fixture) do(t *testing.T, r request) response {
	t.Helper()
	base := f.httpsURL
	if r.plain {
		base = f.httpURL
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body) // hides the length: Transfer-Encoding: chunked
		}
	}
	req, err := http.NewRequest(r.method, base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.header != "":
		req.Header.Set("Authorization", r.header)
	case r.auth != "":
		req.Header.Set("Authorization", "Bearer "+r.auth)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	client := f.client
	if r.cert != nil {
		cert := r.cert
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: f.h.Roots(), Time: f.clock.Now, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		}}
		defer tr.CloseIdleConnections()
		client = &http.Client{Timeout: f.client.Timeout, Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, tls: resp.TLS}
}

// postJSON sends v as a JSON body.
func (f *fixture) postJSON(t *testing.T, path, auth string, v any) response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, request{method: http.MethodPost, path: path, auth: auth, contentType: "application/json", body: b})
}

// wantError checks an error answer: the status, and exactly the body
// {"error":{"code":code,"message":<not empty>}} as JSON.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error: %v", r.status, r.body, err)
	}
	if r.status != status || body.Error.Code != code {
		t.Fatalf("got %d %s (%q), want %d %s", r.status, body.Error.Code, body.Error.Message, status, code)
	}
	if body.Error.Message == "" {
		t.Errorf("error %s has an empty message", code)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	if status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
}

// decode reads a JSON answer strictly into v.
func decode(t *testing.T, r response, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// apiKey stores a new API key with the given scopes and returns the
// credential.
func (f *fixture) apiKey(t *testing.T, scopes ...web.Scope) string {
	t.Helper()
	return f.apiKeyAt(t, f.clock.Now(), 0, scopes...)
}

// apiKeyAt stores an API key created at now with ttl (0: no expiry).
func (f *fixture) apiKeyAt(t *testing.T, now time.Time, ttl time.Duration, scopes ...web.Scope) string {
	t.Helper()
	k, err := web.CreateAPIKey(context.Background(), f.st, web.APIKeyRequest{Name: "test key", Scopes: scopes, TTL: ttl, CreatedBy: "test", Now: now})
	if err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return k.Key
}

// tokenAnswer is the body of POST /v1/admin/tokens.
type tokenAnswer struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	Pool      string    `json:"pool"`
	WorkerID  string    `json:"worker_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// token mints an enrollment token through POST /v1/admin/tokens.
func (f *fixture) token(t *testing.T, pool, worker, ttl string) tokenAnswer {
	t.Helper()
	r := f.postJSON(t, "/v1/admin/tokens", f.admin, map[string]string{"pool": pool, "worker_id": worker, "ttl": ttl})
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/admin/tokens: %d %s", r.status, r.body)
	}
	var a tokenAnswer
	decode(t, r, &a)
	return a
}

// enroll posts csr with the token to /v1/enroll/token.
func (f *fixture) enroll(t *testing.T, token string, csr []byte) response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: "/v1/enroll/token", auth: token, contentType: "application/pkcs10", body: csr})
}

// mustEnroll enrolls worker in pool and returns the leaf.
func (f *fixture) mustEnroll(t *testing.T, pool, worker string) *x509.Certificate {
	t.Helper()
	r := f.enroll(t, f.token(t, pool, worker, "").Token, csrPEM(t, catest.Key(t, ca.KeyP256)))
	if r.status != http.StatusCreated {
		t.Fatalf("enroll %s/%s: %d %s", pool, worker, r.status, r.body)
	}
	return parseChain(t, r.body)[0]
}

func csrPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	return pemBlock("CERTIFICATE REQUEST", catest.CSR(t, key))
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// parseChain reads a PEM chain of certificates and nothing else.
func parseChain(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	certs, err := ca.ParseCertificates(b)
	if err != nil {
		t.Fatalf("certificate chain: %v", err)
	}
	if i := bytes.LastIndex(b, []byte("-----END CERTIFICATE-----")); len(bytes.TrimSpace(b[i+len("-----END CERTIFICATE-----"):])) != 0 {
		t.Fatalf("non-PEM data after the chain: %q", b[i:])
	}
	return certs
}

// ledgerState is what an issuance would change: the active workers of
// every pool, the certificate.issued audit events, and the presented
// enrollment token's use.
type ledgerState struct {
	active    map[string]int
	issued    int
	tokenUsed string
}

func (f *fixture) ledger(t *testing.T, bearer string) ledgerState {
	t.Helper()
	ctx := context.Background()
	s := ledgerState{active: map[string]int{}}
	for _, p := range []string{"default", "capped"} {
		n, err := f.st.CountActiveWorkers(ctx, p, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.active[p] = n
	}
	events, err := f.st.AuditEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Action == "certificate.issued" {
			s.issued++
		}
	}
	if c, err := credential.Parse(credential.EnrollmentToken, bearer); err == nil {
		row, err := f.st.Token(ctx, c.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.tokenUsed = "no such token"
		case err != nil:
			t.Fatal(err)
		case row.UsedAt == nil:
			s.tokenUsed = "unused"
		default:
			s.tokenUsed = "used by " + row.UsedSerial
		}
	}
	return s
}

func (s ledgerState) equal(o ledgerState) bool {
	return s.issued == o.issued && s.tokenUsed == o.tokenUsed &&
		s.active["default"] == o.active["default"] && s.active["capped"] == o.active["capped"]
}
