package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBenchOCSPCatchesWrongAnswers puts a relay between bench ocsp and a
// real responder that passes the warm-up's answers through and then
// answers each request with the (real, correctly signed) answer for the
// other certificate: every such answer must fail the tool's check, with
// both HTTP clients.
func TestBenchOCSPCatchesWrongAnswers(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	srv := startServer(t, devBanner, "dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	for _, client := range []string{"raw", "net/http"} {
		t.Run(strings.ReplaceAll(client, "/", ""), func(t *testing.T) {
			var (
				mu      sync.Mutex
				seen    int
				answers = map[string][]byte{} // request path -> honest answer
			)
			relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				seen++
				if seen > 2 { // the warm-up asked about both certificates
					for path, body := range answers {
						if path != r.URL.Path {
							w.Header().Set("Content-Type", "application/ocsp-response")
							w.Write(body)
							return
						}
					}
				}
				resp, err := http.Get("http://" + srv.http + r.URL.Path)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				answers[r.URL.Path] = body
				w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
				w.WriteHeader(resp.StatusCode)
				w.Write(body)
			}))
			defer relay.Close()
			code, stdout, stderr := cli(t, "bench", "ocsp", "--ca", "https://"+srv.https, "--ca-cert", filepath.Join(dir, fileRootCert),
				"--admin-token-file", filepath.Join(dir, fileAdminToken), "--json", "--clients", "2", "--count", "40",
				"--good", "1", "--revoked", "1", "--method", "get", "--ocsp-url", relay.URL+"/ocsp", "--http-client", client)
			if code != 1 || !strings.Contains(stderr, "40 of 40 requests failed") {
				t.Fatalf("exit %d, stderr %q; want 1 and every request failed", code, stderr)
			}
			r := decodeBench(t, stdout)
			if r.OK != 0 || r.ErrorsByCode["wrong_serial"] != 40 || r.Client != client {
				t.Fatalf("ok %d, errors %v (%v), client %s; want 40 wrong_serial", r.OK, r.ErrorsByCode, r.ErrorSamples, r.Client)
			}
		})
	}
}
