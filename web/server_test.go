package web_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

func TestNewRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, store.DriverSQLite) // New touches no database
	h := catest.NewHierarchy(t, catest.Epoch)
	svc, err := enroll.New(enroll.Config{Issuer: h.Issuer(t, ca.Config{}), Ledger: st, TrustDomain: trustDomain, Pools: defaultPools(t)})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := revocation.New(revocation.Config{Ledger: st, Issuer: h.Intermediate, Signer: h.IntermediateKey, CRLBaseURL: crlBaseURL,
		IssueResponder: svc.IssueResponder, StatusKey: catest.Key(t, ca.KeyP256)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(registry.Config{Ledger: st, ReceiptKey: catest.Key(t, ca.KeyP256)})
	if err != nil {
		t.Fatal(err)
	}
	roots, ints := []*x509.Certificate{h.Root}, []*x509.Certificate{h.Intermediate}
	tests := []struct {
		name string
		cfg  web.Config
	}{
		{"fail/no-enroll-service", web.Config{Registry: reg, Store: st, Revocation: rev, Roots: roots, Intermediates: ints}},
		{"fail/no-revocation-service", web.Config{Registry: reg, Enroll: svc, Store: st, Roots: roots, Intermediates: ints}},
		{"fail/no-store", web.Config{Registry: reg, Enroll: svc, Revocation: rev, Roots: roots, Intermediates: ints}},
		{"fail/no-roots", web.Config{Registry: reg, Enroll: svc, Revocation: rev, Store: st, Intermediates: ints}},
		{"fail/no-intermediates", web.Config{Registry: reg, Enroll: svc, Revocation: rev, Store: st, Roots: roots}},
		{"fail/no-registry", web.Config{Enroll: svc, Revocation: rev, Store: st, Roots: roots, Intermediates: ints}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if srv, err := web.New(tc.cfg); err == nil || srv != nil {
				t.Fatalf("New = %v, %v; want an error", srv, err)
			}
		})
	}
	if _, err := web.New(web.Config{Registry: reg, Enroll: svc, Revocation: rev, Store: st, Roots: roots, Intermediates: ints}); err != nil {
		t.Fatalf("New with a complete config: %v", err)
	}
}

// TestRunRefusesBadRunConfig checks that Run fails at once, without
// serving, and frees the caller's ports.
func TestRunRefusesBadRunConfig(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		srv, _ := newServer(t, st)
		tests := []struct {
			name string
			rc   func(t *testing.T) web.RunConfig
		}{
			{"fail/no-https-listener", func(t *testing.T) web.RunConfig {
				return web.RunConfig{HTTP: listen(t), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
			}},
			{"fail/no-server-names", func(t *testing.T) web.RunConfig {
				return web.RunConfig{HTTPS: listen(t), HTTP: listen(t)}
			}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rc := tc.rc(t)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Run(ctx, rc); err == nil {
					t.Fatal("Run returned nil, want an error")
				}
				if rc.HTTPS == nil {
					return
				}
				for _, ln := range []net.Listener{rc.HTTPS, rc.HTTP} {
					if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
						t.Errorf("listener %s: Accept = %v, want net.ErrClosed (Run must close the listeners it cannot serve)", ln.Addr(), err)
					}
				}
			})
		}
	})
}

// TestRunShutsDownGracefully checks the server certificate Run issues and
// that canceling Run's context stops both listeners and returns nil.
func TestRunShutsDownGracefully(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		r := f.do(t, request{method: http.MethodGet, path: "/healthz"})
		if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
			t.Fatal("no TLS connection state")
		}
		leaf := r.tls.PeerCertificates[0]
		if !slices.ContainsFunc(leaf.IPAddresses, net.IPv4(127, 0, 0, 1).Equal) || leaf.CheckSignatureFrom(f.h.Intermediate) != nil {
			t.Fatalf("server certificate: IPs %v, want 127.0.0.1 and signed by the intermediate", leaf.IPAddresses)
		}
		if row, err := st.Certificate(t.Context(), ca.SerialHex(leaf.SerialNumber)); err != nil || row.Method != enroll.MethodServer {
			t.Fatalf("server certificate ledger row: %+v, %v; want one with method %q", row, err, enroll.MethodServer)
		}

		if err := f.stop(t); err != nil {
			t.Fatalf("Run = %v after cancel, want nil", err)
		}
		for _, base := range []string{f.httpsURL, f.httpURL} {
			req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp, err := f.client.Do(req); err == nil {
				resp.Body.Close()
				t.Errorf("%s still answers after shutdown: %d", base, resp.StatusCode)
			}
		}
	})
}

// TestPlainHTTPListener checks that the plain listener serves the public
// read-only routes and refuses every other route, whatever credential
// comes with the request.
func TestPlainHTTPListener(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		tok := f.token(t, "default", "w-plain", "").Token

		public := []struct {
			name, path, contentType string
			want                    []byte // nil: any body
		}{
			{"ok/healthz", "/healthz", "application/json", nil},
			{"ok/readyz", "/readyz", "application/json", nil},
			{"ok/bundle", "/v1/bundle", "application/pem-certificate-chain", pemBlock("CERTIFICATE", f.h.Root.Raw)},
			{"ok/intermediates", "/v1/intermediates", "application/pem-certificate-chain", pemBlock("CERTIFICATE", f.h.Intermediate.Raw)},
			{"ok/metrics", "/metrics", "text/plain", nil},
		}
		for _, tc := range public {
			t.Run(tc.name, func(t *testing.T) {
				for _, plain := range []bool{true, false} {
					r := f.do(t, request{method: http.MethodGet, path: tc.path, plain: plain})
					if r.status != http.StatusOK {
						t.Fatalf("GET %s (plain=%v): %d %s", tc.path, plain, r.status, r.body)
					}
					if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
						t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.contentType)
					}
					if tc.want != nil && string(r.body) != string(tc.want) {
						t.Errorf("GET %s: body %q, want %q", tc.path, r.body, tc.want)
					}
				}
			})
		}

		private := []struct {
			name string
			req  request
		}{
			{"fail/plain-create-api-key", request{method: http.MethodPost, path: "/v1/admin/api-keys", auth: f.admin, contentType: "application/json", body: []byte(`{"name":"x","scopes":["admin"]}`)}},
			{"fail/plain-list-api-keys", request{method: http.MethodGet, path: "/v1/admin/api-keys", auth: f.admin}},
			{"fail/plain-revoke-api-key", request{method: http.MethodDelete, path: "/v1/admin/api-keys/" + strings.Split(f.admin, "_")[1], auth: f.admin}},
			{"fail/plain-create-token", request{method: http.MethodPost, path: "/v1/admin/tokens", auth: f.admin, contentType: "application/json", body: []byte(`{"pool":"default","worker_id":"w"}`)}},
			{"fail/plain-read-certificate", request{method: http.MethodGet, path: "/v1/admin/certificates/01", auth: f.admin}},
			{"fail/plain-enroll-token", request{method: http.MethodPost, path: "/v1/enroll/token", auth: tok, contentType: "application/pkcs10", body: csrPEM(t, catest.Key(t, ca.KeyP256))}},
			{"fail/plain-enroll-token-without-token", request{method: http.MethodPost, path: "/v1/enroll/token"}},
		}
		for _, tc := range private {
			t.Run(tc.name, func(t *testing.T) {
				req := tc.req
				req.plain = true
				before := f.ledger(t, req.auth)
				wantError(t, f.do(t, req), http.StatusForbidden, "https_required")
				if after := f.ledger(t, req.auth); !after.equal(before) {
					t.Fatalf("a refused plain-HTTP request changed the ledger: %+v -> %+v", before, after)
				}
			})
		}
		// The refusals consumed nothing: the admin key still works over
		// HTTPS and the token still enrolls.
		if r := f.do(t, request{method: http.MethodGet, path: "/v1/admin/api-keys", auth: f.admin}); r.status != http.StatusOK {
			t.Errorf("admin key after the plain-HTTP refusals: %d %s", r.status, r.body)
		}
		if r := f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256))); r.status != http.StatusCreated {
			t.Errorf("token after the plain-HTTP refusals: %d %s", r.status, r.body)
		}
	})
}

// TestMetricsAfterIssuance checks the issuance counter and histogram after
// one issuance and one refusal.
func TestMetricsAfterIssuance(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		f.mustEnroll(t, "default", "w-metrics")
		bad := f.enroll(t, f.token(t, "default", "w-bad", "").Token, csrPEM(t, catest.WeakKey(t, "p224")))
		wantError(t, bad, http.StatusBadRequest, "key_not_allowed")

		r := f.do(t, request{method: http.MethodGet, path: "/metrics", plain: true})
		if r.status != http.StatusOK {
			t.Fatalf("GET /metrics: %d", r.status)
		}
		body := string(r.body)
		for _, want := range []string{
			`workerca_issuance_total{method="token",outcome="issued",pool="default"} 1`,
			`workerca_issuance_total{method="token",outcome="key_not_allowed",pool="default"} 1`,
			`workerca_issuance_duration_seconds_count{method="token",pool="default"} 2`,
			`workerca_issuance_duration_seconds_bucket{method="token",pool="default",le="+Inf"} 2`,
			"# TYPE workerca_issuance_duration_seconds histogram",
			"# TYPE workerca_issuance_total counter",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if !regexp.MustCompile(`(?m)^workerca_http_requests_total\{code="201",route="/v1/enroll/token"\} 1$`).MatchString(body) {
			t.Errorf("/metrics lacks the request counter of the enrollment")
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", body)
		}
	})
}

// TestReadyzAfterStoreClosed checks readiness against a database that has
// gone away, and that the ledger being down fails closed.
func TestReadyzAfterStoreClosed(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		tok := f.token(t, "default", "w-down", "").Token
		if r := f.do(t, request{method: http.MethodGet, path: "/readyz"}); r.status != http.StatusOK || string(r.body) != `{"status":"ready"}`+"\n" {
			t.Fatalf("GET /readyz with the store open: %d %q", r.status, r.body)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		wantError(t, f.do(t, request{method: http.MethodGet, path: "/readyz"}), http.StatusServiceUnavailable, "not_ready")
		wantError(t, f.do(t, request{method: http.MethodGet, path: "/readyz", plain: true}), http.StatusServiceUnavailable, "not_ready")
		if r := f.do(t, request{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("GET /healthz with the store closed: %d, want 200 (liveness does not depend on the database)", r.status)
		}
		r := f.enroll(t, tok, csrPEM(t, catest.Key(t, ca.KeyP256)))
		wantError(t, r, http.StatusServiceUnavailable, "ledger_unavailable")
		if strings.Contains(string(r.body), "-----BEGIN") {
			t.Fatal("a certificate left with the ledger down")
		}
		// An API key cannot be checked either: 503, and the answer names
		// nothing of the cause.
		r = f.do(t, request{method: http.MethodGet, path: "/v1/admin/api-keys", auth: f.admin})
		wantError(t, r, http.StatusServiceUnavailable, "store_unavailable")
		if strings.Contains(string(r.body), "closed") || strings.Contains(string(r.body), "sql") {
			t.Fatalf("503 answer leaks the cause: %s", r.body)
		}
	})
}
