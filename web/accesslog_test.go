package web_test

import (
	"crypto"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/syncbuf"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// TestAccessLogQuietRoutes: successful OCSP and CRL requests are logged
// at debug level only; other routes, and OCSP failures, at info.
func TestAccessLogQuietRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		level    slog.Level
		wantOCSP bool
	}{
		{"ok/info-leaves-out-good-ocsp", slog.LevelInfo, false},
		{"ok/debug-logs-everything", slog.LevelDebug, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs syncbuf.Buffer
			f := start(t, storetest.Open(t, store.DriverSQLite), func(_ *fixture, _ *enroll.Config, wc *web.Config) {
				wc.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: tc.level}))
			})
			leaf := f.mustEnroll(t, "default", "w-log")
			if r := f.postOCSP(t, ocspRequest(t, leaf.SerialNumber, f.h.Intermediate, crypto.SHA256)); r.status != http.StatusOK {
				t.Fatalf("OCSP: %d", r.status)
			}
			if r := f.do(t, request{method: http.MethodGet, path: "/crl/0.crl", plain: true}); r.status != http.StatusOK {
				t.Fatalf("CRL: %d", r.status)
			}
			wantError(t, f.do(t, request{method: http.MethodPut, path: "/ocsp", plain: true}), http.StatusMethodNotAllowed, "method_not_allowed")
			f.do(t, request{method: http.MethodGet, path: "/healthz", plain: true})
			out := logs.String()
			for _, line := range []string{`"path":"/healthz"`, `"method":"PUT","path":"/ocsp","status":405`} {
				if !strings.Contains(out, line) {
					t.Errorf("log lacks %s:\n%s", line, out)
				}
			}
			for _, line := range []string{`"method":"POST","path":"/ocsp"`, `"path":"/crl/0.crl"`} {
				if strings.Contains(out, line) != tc.wantOCSP {
					t.Errorf("logged %s = %v, want %v:\n%s", line, !tc.wantOCSP, tc.wantOCSP, out)
				}
			}
		})
	}
}
