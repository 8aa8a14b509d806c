package verifier_test

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/verifier"
)

// statusHandler serves the revocation service's status routes as web
// does: GET /v1/status/keys and GET /v1/status/{serial}[?at=RFC3339].
// answer, when set, replaces the JWS the service made.
func statusHandler(svc *revocation.Service, answer func(r *http.Request, jws string) string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status/keys", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(svc.StatusKeys())
	})
	mux.HandleFunc("GET /v1/status/{serial}", func(w http.ResponseWriter, r *http.Request) {
		var at *time.Time
		if v := r.URL.Query().Get("at"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				http.Error(w, `{"error":{"code":"invalid_request","message":"at"}}`, http.StatusBadRequest)
				return
			}
			at = &t
		}
		jws, _, err := svc.Status(r.Context(), r.PathValue("serial"), at)
		if err != nil {
			http.Error(w, fmt.Sprintf(`{"error":{"code":"invalid_request","message":%q}}`, err.Error()), http.StatusBadRequest)
			return
		}
		if answer != nil {
			jws = answer(r, jws)
		}
		w.Header().Set("Content-Type", "application/jose")
		_, _ = w.Write([]byte(jws))
	})
	return mux
}

// statusServer serves h's status routes on loopback until the test ends.
func (h *harness) statusServer(t *testing.T, answer func(r *http.Request, jws string) string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(statusHandler(h.svc, answer))
	t.Cleanup(srv.Close)
	return srv
}

func httpStatus(t *testing.T, base string, keys jose.JSONWebKeySet) *verifier.HTTPStatus {
	t.Helper()
	s, err := verifier.NewHTTPStatus(base, &http.Client{Timeout: 10 * time.Second}, keys)
	if err != nil {
		t.Fatalf("NewHTTPStatus(%q): %v", base, err)
	}
	return s
}

// closedURL is an http:// URL on loopback where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// jwks is a JWKS holding key (public or private) as ES256.
func jwks(t *testing.T, key any) jose.JSONWebKeySet {
	t.Helper()
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}}
}

// TestHTTPStatus asks the real status service over HTTP through
// NewHTTPStatus, and checks that every answer that must not be trusted
// is an error.
func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.DriverSQLite)
	w := h.enroll(t, "build", "w-1")
	other := h.enroll(t, "build", "w-2")
	h.clock.Add(10 * time.Minute)
	past := h.clock.Now().Add(-5 * time.Minute).Truncate(time.Second)
	keys := h.svc.StatusKeys()
	receipt := h.receipt(t, registration{w, digestOf("x"), "jws", time.Hour})
	good := func(srv *httptest.Server) string { return srv.URL }

	tests := []struct {
		name   string
		answer func(r *http.Request, jws string) string
		base   func(srv *httptest.Server) string
		keys   jose.JSONWebKeySet
		serial string
		at     time.Time
		err    []error
	}{
		{name: "ok/now", base: good, serial: w.serial},
		{name: "ok/at", base: good, serial: w.serial, at: past},
		{name: "ok/uppercase-serial", base: good, serial: strings.ToUpper(w.serial)},
		{name: "ok/base-with-v1-status", base: func(srv *httptest.Server) string { return srv.URL + "/v1/status/" }, serial: w.serial},
		{name: "ok/base-with-slash", base: func(srv *httptest.Server) string { return srv.URL + "/" }, serial: w.serial, at: past},
		{name: "fail/signed-by-another-key", base: good, serial: w.serial, keys: jwks(t, catest.Key(t, ca.KeyP256).Public()),
			err: []error{verifier.ErrBadStatus, verifier.ErrUnavailable}},
		{name: "fail/receipt-served-as-status", base: good, serial: w.serial,
			answer: func(*http.Request, string) string { return receipt },
			err:    []error{verifier.ErrBadStatus, verifier.ErrUnavailable}},
		{name: "fail/answer-for-another-serial", base: good, serial: w.serial,
			answer: func(r *http.Request, _ string) string {
				jws, _, err := h.svc.Status(r.Context(), other.serial, nil)
				if err != nil {
					t.Error(err)
				}
				return jws
			},
			err: []error{verifier.ErrBadStatus, verifier.ErrUnavailable}},
		{name: "fail/answer-for-another-instant", base: good, serial: w.serial, at: past,
			answer: func(r *http.Request, _ string) string {
				jws, _, err := h.svc.Status(r.Context(), w.serial, nil)
				if err != nil {
					t.Error(err)
				}
				return jws
			},
			err: []error{verifier.ErrBadStatus, verifier.ErrUnavailable}},
		{name: "fail/tampered-answer", base: good, serial: w.serial,
			answer: func(_ *http.Request, jws string) string { return tamper(jws, 2, 5) },
			err:    []error{verifier.ErrBadStatus, verifier.ErrUnavailable}},
		{name: "fail/too-large", base: good, serial: w.serial,
			answer: func(*http.Request, string) string { return strings.Repeat("a", verifier.MaxStatusBytes+1) },
			err:    []error{verifier.ErrUnavailable}},
		{name: "fail/refused-at-in-the-future", base: good, serial: w.serial, at: h.clock.Now().Add(time.Hour),
			err: []error{verifier.ErrUnavailable}},
		{name: "fail/not-found", base: func(srv *httptest.Server) string { return srv.URL + "/elsewhere" }, serial: w.serial,
			err: []error{verifier.ErrUnavailable}},
		{name: "fail/unreachable", base: func(*httptest.Server) string { return closedURL(t) }, serial: w.serial,
			err: []error{verifier.ErrUnavailable}},
		{name: "fail/bad-serial", base: good, serial: "../keys", err: []error{verifier.ErrInvalidRequest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := h.statusServer(t, tc.answer)
			k := keys
			if tc.keys.Keys != nil {
				k = tc.keys
			}
			st, err := httpStatus(t, tc.base(srv), k).Status(t.Context(), tc.serial, tc.at)
			if tc.err != nil {
				for _, e := range tc.err {
					if !errors.Is(err, e) {
						t.Errorf("error %v; want one wrapping %v", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantAt := tc.at
			if wantAt.IsZero() {
				wantAt = h.clock.Now().Truncate(time.Second)
			}
			if st.Serial != w.serial || st.Status != revocation.StatusGood || !st.At.Equal(wantAt) {
				t.Errorf("status %+v; want %s good at %s", st, w.serial, wantAt)
			}
		})
	}
}

// TestNewHTTPStatus checks the base URLs and keys NewHTTPStatus accepts.
func TestNewHTTPStatus(t *testing.T) {
	t.Parallel()
	key := catest.Key(t, ca.KeyP256)
	weak := catest.WeakKey(t, "rsa1024")
	tests := []struct {
		name string
		base string
		keys jose.JSONWebKeySet
		err  error
	}{
		{"ok/https", "https://ca.example.com:8443", jwks(t, key.Public()), nil},
		{"ok/http-with-path", "http://ca.example.com/v1/status", jwks(t, key.Public()), nil},
		{"fail/no-keys", "https://ca.example.com", jose.JSONWebKeySet{}, verifier.ErrConfig},
		{"fail/private-key", "https://ca.example.com", jwks(t, key), verifier.ErrConfig},
		{"fail/weak-key", "https://ca.example.com", jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: weak.Public(), KeyID: "w"}}}, verifier.ErrConfig},
		{"fail/no-scheme", "ca.example.com", jwks(t, key.Public()), verifier.ErrConfig},
		{"fail/ftp", "ftp://ca.example.com", jwks(t, key.Public()), verifier.ErrConfig},
		{"fail/query", "https://ca.example.com/?x=1", jwks(t, key.Public()), verifier.ErrConfig},
		{"fail/credentials", "https://u:p@ca.example.com", jwks(t, key.Public()), verifier.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := verifier.NewHTTPStatus(tc.base, nil, tc.keys)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("NewHTTPStatus = %v; want %v", err, tc.err)
			}
		})
	}
}

// TestFetchStatusKeys fetches the JWKS over verified HTTPS and refuses
// plain HTTP.
func TestFetchStatusKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.DriverSQLite)
	tlsSrv := httptest.NewTLSServer(statusHandler(h.svc, nil))
	t.Cleanup(tlsSrv.Close)
	plain := h.statusServer(t, nil)
	downgrade := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/v1/status/keys", http.StatusFound)
	}))
	t.Cleanup(downgrade.Close)
	garbage := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) }))
	t.Cleanup(garbage.Close)

	tests := []struct {
		name   string
		base   string
		client *http.Client
		err    error
	}{
		{"ok/https", tlsSrv.URL, tlsSrv.Client(), nil},
		{"ok/https-with-path", tlsSrv.URL + "/v1/status", tlsSrv.Client(), nil},
		{"fail/plain-http", plain.URL, nil, verifier.ErrConfig},
		{"fail/unverified-tls", tlsSrv.URL, &http.Client{Timeout: 10 * time.Second}, verifier.ErrUnavailable},
		{"fail/empty-set", garbage.URL, garbage.Client(), verifier.ErrConfig},
		{"fail/redirect-to-plain-http", downgrade.URL, downgrade.Client(), verifier.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := verifier.FetchStatusKeys(t.Context(), tc.base, tc.client)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("FetchStatusKeys = %v; want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := h.svc.StatusKeys().Keys[0].Thumbprint(crypto.SHA256)
			got, _ := keys.Keys[0].Thumbprint(crypto.SHA256)
			if len(keys.Keys) != 1 || string(got) != string(want) {
				t.Errorf("fetched %d keys, not the status key", len(keys.Keys))
			}
		})
	}
}

// TestParseStatus checks that only status answers verify as such.
func TestParseStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, store.DriverSQLite)
	w := h.enroll(t, "build", "w-1")
	jws, want, err := h.svc.Status(t.Context(), w.serial, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same key signs receipts: typ keeps them apart.
	rs, err := artifact.NewReceiptSigner(h.statusKey)
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := rs.Sign(artifact.Receipt{SHA256: digestOf("x"), Serial: w.serial, RegisteredAt: h.clock.Now(), ExpiresAt: h.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		jws  string
		keys jose.JSONWebKeySet
		ok   bool
	}{
		{"ok/status", jws, h.svc.StatusKeys(), true},
		{"ok/status-key-without-kid", jws, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: h.statusKey.Public()}}}, true},
		{"fail/status-key-under-another-kid", jws, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: h.statusKey.Public(), KeyID: "other"}}}, false},
		{"fail/receipt", receipt, h.svc.StatusKeys(), false},
		{"fail/other-key", jws, jwks(t, catest.Key(t, ca.KeyP256).Public()), false},
		{"fail/empty", "", h.svc.StatusKeys(), false},
		{"fail/tampered-payload", tamper(jws, 1, 3), h.svc.StatusKeys(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, err := verifier.ParseStatus(tc.jws, tc.keys)
			if !tc.ok {
				if !errors.Is(err, verifier.ErrBadStatus) {
					t.Fatalf("ParseStatus = %+v, %v; want ErrBadStatus", st, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Serial != want.Serial || st.Status != want.Status || !st.At.Equal(want.At) {
				t.Errorf("ParseStatus = %+v, want %+v", st, want)
			}
		})
	}
}
