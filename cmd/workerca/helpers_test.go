package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/syncbuf"
	"github.com/workerca/workerca/internal/tooltest"
)

// cli runs the command line in-process to completion. A command that
// wrongly starts serving is stopped after 20 s, and then exits 0.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustCLI runs the command line and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := cli(t, args...)
	if code != 0 {
		t.Fatalf("workerca %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout, stderr
}

// server is a workerca server (dev or serve) running in-process on
// loopback with ports chosen by the kernel.
type server struct {
	https, http    string // host:port; http is empty without a plain listener
	stdout, stderr *syncbuf.Buffer

	cancel context.CancelFunc
	done   chan int
	once   sync.Once
	code   int
}

// addrFinder extracts the listen addresses from what the server printed.
type addrFinder func(stdout, stderr string) (https, http string, ok bool)

var (
	bannerHTTPS = regexp.MustCompile(`(?m)^  https: https://(\S+)$`)
	bannerHTTP  = regexp.MustCompile(`(?m)^  http:  http://(\S+) `)
)

// devBanner reads the addresses from printDevBanner's output.
func devBanner(stdout, _ string) (string, string, bool) {
	hs := bannerHTTPS.FindStringSubmatch(stdout)
	if hs == nil {
		return "", "", false
	}
	var h string
	if m := bannerHTTP.FindStringSubmatch(stdout); m != nil {
		h = m[1]
	}
	return hs[1], h, true
}

// servingLog reads the addresses from the server's JSON "serving" log line.
func servingLog(_, stderr string) (string, string, bool) {
	for _, line := range strings.Split(stderr, "\n") {
		var rec struct {
			Msg   string `json:"msg"`
			HTTPS string `json:"https"`
			HTTP  string `json:"http"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" && rec.HTTPS != "" {
			return rec.HTTPS, rec.HTTP, true
		}
	}
	return "", "", false
}

// startServer runs `workerca args...` in a goroutine and waits until find
// sees its listen addresses. The server is stopped at the end of the test
// if the test has not stopped it.
func startServer(t *testing.T, find addrFinder, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, args, s.stdout, s.stderr) }()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case code := <-s.done:
			s.once.Do(func() { s.code = code; cancel() })
			t.Fatalf("workerca %s exited early with %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, s.stdout, s.stderr)
		case <-deadline:
			t.Fatalf("workerca %s did not start listening in 30s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), s.stdout, s.stderr)
		case <-tick.C:
			if hs, h, ok := find(s.stdout.String(), s.stderr.String()); ok {
				s.https, s.http = hs, h
				return s
			}
		}
	}
}

// stop cancels the server's context, as SIGTERM does, and returns run's
// exit code. It fails the test if the server does not stop within 5 s.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case s.code = <-s.done:
		case <-time.After(5 * time.Second):
			s.code = -1
			t.Errorf("server did not shut down within 5s of cancellation\nstderr:\n%s", s.stderr)
		}
	})
	return s.code
}

// requireTools skips the test when a tool is missing, or fails it under
// CI=true, where nothing may be skipped silently.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	tooltest.Require(t, names...)
}

// tool runs an external program in dir and returns its combined output.
func tool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustTool runs an external program and fails the test if it fails.
func mustTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := tool(t, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// readCerts parses every CERTIFICATE block of a PEM file.
func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCerts(t, b)
}

func parseCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	certs, err := ca.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

// requireMode fails unless path's permission bits are exactly want.
func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
	}
}

// editConfig rewrites a workerca.json through fn, keeping unknown keys so
// tests can add them.
func editConfig(t *testing.T, path string, fn func(cfg map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	fn(cfg)
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
