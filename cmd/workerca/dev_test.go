package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevOnCommittedHierarchy runs dev on a copy of certs-dev/ (hierarchy
// and configuration, no ledger, keys as a git checkout leaves them): it
// makes the bootstrap admin key on first run, keeps it on the next, and
// refuses to start when the ledger has keys but admin.token is gone.
func TestDevOnCommittedHierarchy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{fileConfigName, fileRootCert, fileIntCert, fileIntKey, fileStatusKey} {
		b, err := os.ReadFile(filepath.Join("..", "..", "certs-dev", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	adminPath := filepath.Join(dir, fileAdminToken)
	args := []string{"dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", ""}

	srv := startServer(t, devBanner, args...)
	if srv.http != "" {
		t.Errorf("--http-addr \"\" still serves plain HTTP on %s", srv.http)
	}
	requireMode(t, adminPath, 0o600)
	first, err := os.ReadFile(adminPath)
	if err != nil {
		t.Fatal(err)
	}
	requireAdminAccess(t, dir, srv.https, strings.TrimSpace(string(first)))
	// The banner's pin is the root's SPKI SHA-256, as enroll.sh computes it.
	root := readCerts(t, filepath.Join(dir, fileRootCert))[0]
	sum := sha256.Sum256(root.RawSubjectPublicKeyInfo)
	if pin := "root pin:     sha256:" + hex.EncodeToString(sum[:]); !strings.Contains(srv.stdout.String(), pin) {
		t.Errorf("banner lacks %q:\n%s", pin, srv.stdout)
	}
	if !strings.Contains(srv.stderr.String(), looseKeyWarning) {
		t.Errorf("dev does not warn about the 0644 %s:\n%s", fileIntKey, srv.stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("dev exited %d, want 0\n%s", code, srv.stderr)
	}

	// The second run keeps the key.
	srv = startServer(t, devBanner, args...)
	if again, err := os.ReadFile(adminPath); err != nil || string(again) != string(first) {
		t.Errorf("second dev run changed admin.token (%v)", err)
	}
	requireAdminAccess(t, dir, srv.https, strings.TrimSpace(string(first)))
	if code := srv.stop(t); code != 0 {
		t.Fatalf("dev exited %d, want 0\n%s", code, srv.stderr)
	}

	// The ledger has an admin key nobody holds any more: dev says so.
	if err := os.Remove(adminPath); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, args...); code != 1 || !strings.Contains(stderr, fileAdminToken+" is missing") {
		t.Errorf("dev without admin.token: exit %d, stderr %q; want 1 and %q", code, stderr, fileAdminToken+" is missing")
	}
}

// requireAdminAccess lists the API keys over HTTPS, trusting only
// <dir>/root.crt, with the admin key.
func requireAdminAccess(t *testing.T, dir, addr, admin string) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(readCerts(t, filepath.Join(dir, fileRootCert))[0])
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+"/v1/admin/api-keys", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "bootstrap admin") {
		t.Errorf("GET /v1/admin/api-keys with admin.token: %d %s", resp.StatusCode, body)
	}
}
