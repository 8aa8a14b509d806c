// Package agenttest starts a real workerca server for the agent's tests:
// it builds cmd/workerca, makes a CA with `workerca init`, lets the test
// edit the default pool, and serves it with `workerca dev` on loopback;
// it can stop the server and restart it on the same address, as an
// outage would.
package agenttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
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
	dir, err := os.MkdirTemp("", "workerca-agent-test-")
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

var bannerHTTPS = regexp.MustCompile(`(?m)^  https: (https://\S+)$`)

// Start makes a CA with the workerca binary bin (`workerca init`), lets
// edit change the default pool (pools[0] of workerca.json), and serves it
// with `workerca dev` until the test ends.
func Start(t testing.TB, bin string, edit func(pool map[string]any)) *CA {
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
		edit(cfg["pools"].([]any)[0].(map[string]any))
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
	c.srv, c.URL = c.serve(t, "127.0.0.1:0")
	c.Root = readCert(t, filepath.Join(dir, "root.crt"))
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
		t.Fatal("agenttest: Stop: the CA is not running")
	}
	c.srv.stop()
	c.srv = nil
}

// Restart serves the stopped CA again from the same directory on the
// same address, so clients find it at URL again.
func (c *CA) Restart(t testing.TB) {
	t.Helper()
	if c.srv != nil {
		t.Fatal("agenttest: Restart: the CA is running")
	}
	srv, url := c.serve(t, strings.TrimPrefix(c.URL, "https://"))
	if url != c.URL {
		srv.stop()
		t.Fatalf("agenttest: restarted at %s, was %s", url, c.URL)
	}
	c.srv = srv
}

// serve starts `workerca dev` on addr and waits for its banner. A fixed
// port that is briefly in use (by a connection in another test) is
// retried for a few seconds.
func (c *CA) serve(t testing.TB, addr string) (*server, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	retryUntil := time.Now().Add(5 * time.Second)
	for {
		s := &server{done: make(chan struct{})}
		s.cmd = exec.Command(c.bin, "dev", "--dir", c.Dir, "--https-addr", addr, "--http-addr", "")
		s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		for exited := false; !exited; {
			if m := bannerHTTPS.FindStringSubmatch(s.stdout.String()); m != nil {
				return s, m[1]
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

func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
	body := fmt.Sprintf(`{"pool":"default","worker_id":%q,"ttl":"1h"}`, worker)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL+"/v1/admin/tokens", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.Admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("minting a token: %d %s", resp.StatusCode, b)
	}
	var tr struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(tr.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Revoke revokes cert through the admin API.
func (c *CA) Revoke(t testing.TB, cert *x509.Certificate) {
	t.Helper()
	body := fmt.Sprintf(`{"serial":"%x","reason":"keyCompromise"}`, cert.SerialNumber.Bytes())
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL+"/v1/admin/revocations", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.Admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("revoking: %d %s", resp.StatusCode, b)
	}
}
