package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEnrollShDash runs enroll/scripts/enroll.sh under dash, as a hardware
// host would, against `workerca dev` over real TLS: usage errors exit 2; a
// wrong pin is refused before the token is sent (the token still enrolls
// afterwards) and writes nothing; a good run writes a key (0600) and a
// chain openssl verifies that names the token's pool and worker; a rerun
// with the used token exits 1 with token_used and leaves the files as they
// were; a token from WORKERCA_TOKEN replaces them; a bundle.pem that no
// longer holds the pinned root is fetched again.
func TestEnrollShDash(t *testing.T) {
	requireTools(t, "dash", "curl", "openssl")
	t.Parallel()

	dir := filepath.Join(t.TempDir(), "ca")
	srv := startServer(t, devBanner, "dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	pin, err := rootPin(filepath.Join(dir, fileRootCert)) // what `workerca dev` prints
	if err != nil {
		t.Fatal(err)
	}
	caURL := "https://" + srv.https
	host := t.TempDir()
	out := filepath.Join(host, "etc", "workerca")

	newToken := func(t *testing.T, worker string) string {
		t.Helper()
		stdout, _ := mustCLI(t, "token", "create", "--config", filepath.Join(dir, fileConfigName), "--pool", "default", "--worker", worker, "--ttl", "1h")
		tok := strings.TrimSpace(stdout)
		if !strings.HasPrefix(tok, "wct_") {
			t.Fatalf("token create printed %q, want a wct_ token", tok)
		}
		return tok
	}
	tokenFile := func(t *testing.T, tok string) string {
		t.Helper()
		f, err := os.CreateTemp(host, "token")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(tok + "\n"); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}

	t.Run("fail/usage", func(t *testing.T) {
		tok := tokenFile(t, "wct_unused")
		for _, tc := range []struct {
			name string
			env  []string
			args []string
		}{
			{"no-arguments", nil, nil},
			{"no-ca", nil, []string{"--token-file", tok, "--out", out, "--ca-pin", pin}},
			{"no-pin", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out}},
			{"no-out", nil, []string{"--ca", caURL, "--token-file", tok, "--ca-pin", pin}},
			{"no-token", nil, []string{"--ca", caURL, "--out", out, "--ca-pin", pin}},
			{"empty-token-env", []string{"WORKERCA_TOKEN="}, []string{"--ca", caURL, "--out", out, "--ca-pin", pin}},
			{"token-file-missing", nil, []string{"--ca", caURL, "--token-file", filepath.Join(host, "nope"), "--out", out, "--ca-pin", pin}},
			{"token-with-quote", []string{"WORKERCA_TOKEN=wct_a\"b"}, []string{"--ca", caURL, "--out", out, "--ca-pin", pin}},
			{"pin-without-sha256-prefix", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out, "--ca-pin", strings.TrimPrefix(pin, "sha256:")}},
			{"pin-too-short", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out, "--ca-pin", pin[:40]}},
			{"pin-of-empty-input", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out, "--ca-pin", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
			{"ca-not-https", nil, []string{"--ca", "http://" + srv.http, "--token-file", tok, "--out", out, "--ca-pin", pin}},
			{"flag-without-value", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out, "--ca-pin"}},
			{"unknown-flag", nil, []string{"--ca", caURL, "--token-file", tok, "--out", out, "--ca-pin", pin, "--insecure"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, output := runEnrollSh(t, tc.env, tc.args...)
				if code != 2 {
					t.Errorf("exit %d, want 2 (usage)\n%s", code, output)
				}
				if !strings.Contains(output, "--help") {
					t.Errorf("usage error does not point at --help:\n%s", output)
				}
			})
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("usage errors created %s (stat: %v)", out, err)
		}
		code, output := runEnrollSh(t, nil, "--help")
		if code != 0 || !strings.Contains(output, "Exit status:") || !strings.Contains(output, "--ca-pin sha256:") {
			t.Errorf("--help: exit %d, want 0 and the usage with exit statuses:\n%s", code, output)
		}
	})

	t.Run("fail/ca-unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		code, output := runEnrollSh(t, nil, "--ca", "https://"+addr, "--token-file", tokenFile(t, "wct_unused"), "--out", out, "--ca-pin", pin)
		if code != 1 || !strings.Contains(output, "cannot fetch") {
			t.Errorf("exit %d, want 1 saying it cannot fetch the bundle:\n%s", code, output)
		}
		requireNoDir(t, filepath.Dir(out)) // out and the parent it made
	})

	tokA := newToken(t, "host-01")
	fileA := tokenFile(t, tokA)

	t.Run("fail/wrong-pin", func(t *testing.T) {
		wrong := sha256.Sum256([]byte("not the root"))
		code, output := runEnrollSh(t, nil, "--ca", caURL, "--token-file", fileA, "--out", out, "--ca-pin", "sha256:"+hex.EncodeToString(wrong[:]))
		if code != 1 || !strings.Contains(output, "matches --ca-pin") || !strings.Contains(output, pin) {
			t.Errorf("exit %d, want 1 naming the pin the CA offered (%s):\n%s", code, pin, output)
		}
		requireNoDir(t, filepath.Dir(out)) // out and the parent it made
	})

	// The token survived the refused run: the pin is checked before it is sent.
	var first map[string][]byte
	t.Run("ok/token-file", func(t *testing.T) {
		// Upper case and colons in the pin are accepted.
		hexPin := strings.ToUpper(strings.TrimPrefix(pin, "sha256:"))
		code, output := runEnrollSh(t, nil, "--ca", caURL+"/", "--token-file", fileA, "--out", out, "--ca-pin", "sha256:"+hexPin[:2]+":"+hexPin[2:])
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, output)
		}
		if !strings.Contains(output, "spiffe://dev.workerca.test/worker/default/host-01") {
			t.Errorf("output does not name the SPIFFE ID:\n%s", output)
		}
		first = checkEnrolled(t, out, dir, "host-01")
	})
	if first == nil {
		t.Fatal("no enrollment to run again")
	}

	t.Run("fail/token-used", func(t *testing.T) {
		code, output := runEnrollSh(t, nil, "--ca", caURL, "--token-file", fileA, "--out", out, "--ca-pin", pin)
		if code != 1 || !strings.Contains(output, "token_used") || !strings.Contains(output, "ask the operator for a new one") {
			t.Errorf("exit %d, want 1 with token_used and what to do:\n%s", code, output)
		}
		if got := readDir(t, out); !sameFiles(got, first) {
			t.Errorf("a refused rerun changed %s: files %v, want %v unchanged", out, names(got), names(first))
		}
	})

	t.Run("ok/token-env-replaces", func(t *testing.T) {
		tokB := newToken(t, "host-02")
		code, output := runEnrollSh(t, []string{"WORKERCA_TOKEN=" + tokB}, "--ca", caURL, "--out", out, "--ca-pin", pin)
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, output)
		}
		if !strings.Contains(output, "using the pinned root") {
			t.Errorf("a rerun did not use the existing bundle.pem:\n%s", output)
		}
		second := checkEnrolled(t, out, dir, "host-02")
		if bytes.Equal(second["key.pem"], first["key.pem"]) {
			t.Errorf("a new enrollment kept the old key")
		}
	})

	t.Run("ok/bundle-without-pinned-root-refetched", func(t *testing.T) {
		inter, err := os.ReadFile(filepath.Join(dir, fileIntCert))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "bundle.pem"), inter, 0o644); err != nil {
			t.Fatal(err)
		}
		tokC := newToken(t, "host-03")
		code, output := runEnrollSh(t, []string{"WORKERCA_TOKEN=" + tokC}, "--ca", caURL, "--out", out, "--ca-pin", pin)
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s", code, output)
		}
		if !strings.Contains(output, "does not hold the pinned root") {
			t.Errorf("output does not say bundle.pem was fetched again:\n%s", output)
		}
		checkEnrolled(t, out, dir, "host-03")
	})
}

// runEnrollSh runs enroll.sh under dash with env added to the test's
// environment (less any WORKERCA_TOKEN) and returns its exit code and
// combined output.
func runEnrollSh(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "enroll", "scripts", "enroll.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dash", append([]string{script}, args...)...)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WORKERCA_TOKEN=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	output, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(output)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(output)
	default:
		t.Fatalf("dash enroll.sh: %v\n%s", err, output)
		return -1, ""
	}
}

// checkEnrolled checks what enroll.sh wrote to out for worker, against the
// dev CA in caDir, and returns the files it found.
func checkEnrolled(t *testing.T, out, caDir, worker string) map[string][]byte {
	t.Helper()
	files := readDir(t, out)
	if got := strings.Join(names(files), " "); got != "bundle.pem cert.pem chain.pem key.pem" {
		t.Fatalf("%s holds %q, want exactly bundle.pem cert.pem chain.pem key.pem", out, got)
	}
	requireMode(t, filepath.Join(out, "key.pem"), 0o600)
	for _, f := range []string{"cert.pem", "chain.pem", "bundle.pem"} {
		requireMode(t, filepath.Join(out, f), 0o644)
	}

	root := readCerts(t, filepath.Join(caDir, fileRootCert))
	if bundle := parseCerts(t, files["bundle.pem"]); len(bundle) != 1 || !bundle[0].Equal(root[0]) {
		t.Errorf("bundle.pem holds %d certificates, want exactly root.crt", len(bundle))
	}
	chain := parseCerts(t, files["chain.pem"])
	inter := readCerts(t, filepath.Join(caDir, fileIntCert))
	if len(chain) != 2 || !chain[1].Equal(inter[0]) {
		t.Fatalf("chain.pem holds %d certificates, want the leaf and %s", len(chain), fileIntCert)
	}
	if leaf := parseCerts(t, files["cert.pem"]); len(leaf) != 1 || !leaf[0].Equal(chain[0]) {
		t.Errorf("cert.pem is not the first certificate of chain.pem")
	}
	leaf := chain[0]
	wantID := "spiffe://dev.workerca.test/worker/default/" + worker
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID {
		t.Errorf("URI SANs = %v, want exactly [%s]", leaf.URIs, wantID)
	}

	// openssl, given only the root, accepts the chain as written.
	if got := mustTool(t, out, "openssl", "verify", "-CAfile", filepath.Join(caDir, fileRootCert), "-untrusted", "chain.pem", "cert.pem"); strings.TrimSpace(got) != "cert.pem: OK" {
		t.Errorf("openssl verify = %q, want \"cert.pem: OK\"", got)
	}

	block, _ := pem.Decode(files["key.pem"])
	if block == nil {
		t.Fatal("key.pem holds no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("key.pem: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("key.pem holds a %T", key)
	}
	if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Errorf("cert.pem does not hold the key in key.pem")
	}
	return files
}

// readDir returns the contents of every entry of dir, by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		files[e.Name()] = b
	}
	return files
}

// names returns the sorted names of files.
func names(files map[string][]byte) []string {
	var ns []string
	for n := range files {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func sameFiles(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}

// requireNoDir fails if a refused run left dir behind: a run removes the
// directories it made when it fails.
func requireNoDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run left %s behind (stat: %v)", dir, err)
	}
}
