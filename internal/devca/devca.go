// Package devca starts a real workerca server for tests that run outside
// cmd/workerca (the agent, examples): it builds cmd/workerca, makes a CA
// with `workerca init`, lets the test edit workerca.json, and serves it
// with `workerca dev` on loopback (HTTPS and the plain HTTP listener); it
// mints tokens and revokes through the admin API, and can stop the server
// and restart it on the same addresses, as an outage would.
package devca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/syncbuf"
)

// Build compiles cmd/workerca into dir and returns the binary's path;
// call it once from TestMain.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "workerca")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/workerca/workerca/cmd/workerca")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building workerca: %w", err)
	}
	return bin, nil
}

// Main is a TestMain body: it builds workerca into a temporary
// directory, sets *bin, runs the tests and returns their exit code.
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "devca-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// CA is a real `workerca dev` process on loopback.
type CA struct {
	// URL is https://127.0.0.1:port.
	URL string
	// HTTPURL is the plain HTTP listener, http://127.0.0.1:port (CRLs,
	// OCSP, status: what certificates' CDP and AIA name).
	HTTPURL string
	// Dir is the CA's directory (workerca.json, root.crt, ...).
	Dir string
	// Root is the CA's root certificate.
	Root *x509.Certificate
	// Admin is the admin API key.
	Admin string

	bin string
	srv *server // nil while stopped
}

// server is one `workerca dev` process.
type server struct {
	cmd            *exec.Cmd
	done           chan struct{}
	stdout, stderr syncbuf.Buffer
}

// stop sends SIGTERM and waits for the process to exit (kills it after 10s).
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

var (
	bannerHTTPS = regexp.MustCompile(`(?m)^  https: (https://\S+)$`)
	bannerHTTP  = regexp.MustCompile(`(?m)^  http:  (http://\S+) `)
)

// Start makes a CA with the workerca binary bin (`workerca init`), lets
// edit change the default pool (pools[0] of workerca.json), and serves it
// with `workerca dev` until the test ends.
func Start(t testing.TB, bin string, edit func(pool map[string]any)) *CA {
	t.Helper()
	var cfgEdit func(cfg map[string]any)
	if edit != nil {
		cfgEdit = func(cfg map[string]any) { edit(cfg["pools"].([]any)[0].(map[string]any)) }
	}
	return StartWith(t, bin, cfgEdit)
}

// StartWith is Start with edit given the whole workerca.json.
func StartWith(t testing.TB, bin string, edit func(cfg map[string]any)) *CA {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(bin, "init", "--dir", dir, "--trust-domain", "dev.workerca.test").CombinedOutput(); err != nil {
		t.Fatalf("workerca init: %v\n%s", err, out)
	}
	if edit != nil {
		path := filepath.Join(dir, "workerca.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if b, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &CA{Dir: dir, bin: bin}
	t.Cleanup(func() {
		if c.srv != nil {
			c.srv.stop()
		}
	})
	c.srv, c.URL, c.HTTPURL = c.serve(t, "127.0.0.1:0", "127.0.0.1:0")
	roots, err := ca.ReadCertificates(filepath.Join(dir, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	c.Root = roots[0]
	admin, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c.Admin = strings.TrimSpace(string(admin))
	return c
}

// Stop stops the server (SIGTERM, then wait), keeping its directory and
// ledger, as a CA outage would.
func (c *CA) Stop(t testing.TB) {
	t.Helper()
	if c.srv == nil {
		t.Fatal("devca: Stop: the CA is not running")
	}
	c.srv.stop()
	c.srv = nil
}

// Restart serves the stopped CA again from the same directory on the
// same address, so clients find it at URL again.
func (c *CA) Restart(t testing.TB) {
	t.Helper()
	if c.srv != nil {
		t.Fatal("devca: Restart: the CA is running")
	}
	srv, url, httpURL := c.serve(t, strings.TrimPrefix(c.URL, "https://"), strings.TrimPrefix(c.HTTPURL, "http://"))
	if url != c.URL || httpURL != c.HTTPURL {
		srv.stop()
		t.Fatalf("devca: restarted at %s and %s, was %s and %s", url, httpURL, c.URL, c.HTTPURL)
	}
	c.srv = srv
}

// serve starts `workerca dev` on the HTTPS and HTTP addresses and waits
// for its banner. A fixed port that is briefly in use (by a connection in
// another test) is retried for a few seconds.
func (c *CA) serve(t testing.TB, addr, httpAddr string) (*server, string, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	retryUntil := time.Now().Add(5 * time.Second)
	for {
		s := &server{done: make(chan struct{})}
		s.cmd = exec.Command(c.bin, "dev", "--dir", c.Dir, "--https-addr", addr, "--http-addr", httpAddr)
		s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		for exited := false; !exited; {
			out := s.stdout.String()
			if m, h := bannerHTTPS.FindStringSubmatch(out), bannerHTTP.FindStringSubmatch(out); m != nil && h != nil {
				return s, m[1], h[1]
			}
			select {
			case <-s.done:
				exited = true
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				s.stop()
				t.Fatalf("workerca dev did not start in 30s\nstdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
			}
		}
		if !strings.Contains(s.stderr.String(), "address already in use") || time.Now().After(retryUntil) {
			t.Fatalf("workerca dev exited\nstdout:\n%s\nstderr:\n%s", s.stdout.String(), s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TPMPool is a StartWith edit for method tpm: TPM attestation trusting
// the EK certificates of the manufacturer roots (PEM files, with
// intermediates, if any), and pool (a pools[] entry, e.g. {"name":
// "metal", "methods": ["tpm"]}) added after the default pool.
func TPMPool(roots, intermediates []string, pool map[string]any) func(cfg map[string]any) {
	return func(cfg map[string]any) {
		att, _ := cfg["attestation"].(map[string]any)
		if att == nil {
			att = map[string]any{}
		}
		tpm := map[string]any{"manufacturer_roots": roots}
		if len(intermediates) > 0 {
			tpm["manufacturer_intermediates"] = intermediates
		}
		att["tpm"] = tpm
		cfg["attestation"] = att
		cfg["pools"] = append(cfg["pools"].([]any), pool)
	}
}

// Client is an HTTPS client trusting only the CA's root.
func (c *CA) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(c.Root)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// Token mints a one-time token for worker in the default pool through
// the admin API and writes it to a file, whose path it returns.
func (c *CA) Token(t testing.TB, worker string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(c.MintToken(t, "default", worker)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// MintToken mints a one-time token for pool/worker through the admin API
// and returns it.
func (c *CA) MintToken(t testing.TB, pool, worker string) string {
	t.Helper()
	b := c.admin(t, "/v1/admin/tokens", fmt.Sprintf(`{"pool":%q,"worker_id":%q,"ttl":"1h"}`, pool, worker), http.StatusCreated)
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.Token
}

// Revoke revokes cert (keyCompromise) through the admin API.
func (c *CA) Revoke(t testing.TB, cert *x509.Certificate) {
	t.Helper()
	c.admin(t, "/v1/admin/revocations", fmt.Sprintf(`{"serial":"%x","reason":"keyCompromise"}`, cert.SerialNumber.Bytes()), http.StatusOK)
}

// admin POSTs the JSON body to path with the admin API key and returns
// the answer, failing the test unless its status is want.
func (c *CA) admin(t testing.TB, path, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}
