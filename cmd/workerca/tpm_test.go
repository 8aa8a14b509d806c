package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workerca/workerca/internal/tpmtest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestTPMCommands registers, lists and unregisters an EK with the CLI on
// each ledger, from a hash and from an EK certificate file, with the
// method configured from workerca.json (manufacturer roots on disk); and
// shows the configuration mistakes it refuses.
func TestTPMCommands(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			initArgs := []string{"init", "--dir", dir, "--trust-domain", testTrustDomain}
			if driver == store.DriverPostgres {
				initArgs = append(initArgs, "--db", storetest.Config(t, driver).DSN)
			}
			mustCLI(t, initArgs...)
			cfg := filepath.Join(dir, fileConfigName)
			m := tpmtest.NewManufacturer(t)
			if err := os.Mkdir(filepath.Join(dir, "tpm-roots"), 0o755); err != nil {
				t.Fatal(err)
			}
			rootFile := m.WriteRoot(t, filepath.Join(dir, "tpm-roots"))
			editConfig(t, cfg, func(c map[string]any) {
				c["attestation"] = map[string]any{"tpm": map[string]any{"manufacturer_roots": []string{"tpm-roots"}}}
				c["pools"] = append(c["pools"].([]any),
					map[string]any{"name": "metal", "methods": []string{"tpm"}},
					map[string]any{"name": "lab", "methods": []string{"tpm"}, "tpm": map[string]any{"ek": "registered"}})
			})
			if _, err := os.Stat(rootFile); err != nil {
				t.Fatal(err)
			}

			ek, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
			sum := sha256.Sum256(pub)
			hash := hex.EncodeToString(sum[:])
			out, _ := mustCLI(t, "tpm", "register", "--config", cfg, "--ek-sha256", hash, "--pool", "lab", "--worker-id", "rack7-node3")
			if want := "registered EK " + hash + ": pool lab, worker rack7-node3\n"; out != want {
				t.Errorf("register printed %q, want %q", out, want)
			}

			// From an EK certificate file (PEM): the hash is its key's.
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			certFile := filepath.Join(t.TempDir(), "ek.pem")
			certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.EKCertificate(t, &other.PublicKey)})
			if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			otherPub, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
			otherSum := sha256.Sum256(otherPub)
			out, _ = mustCLI(t, "tpm", "register", "--config", cfg, "--ek-file", certFile, "--pool", "metal", "--json")
			var reg map[string]string
			if err := json.Unmarshal([]byte(out), &reg); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if reg["ek_sha256"] != hex.EncodeToString(otherSum[:]) || reg["worker_id"] != "ek-"+reg["ek_sha256"][:32] || reg["pool"] != "metal" {
				t.Errorf("register --ek-file --json = %v", reg)
			}

			out, _ = mustCLI(t, "tpm", "list", "--config", cfg, "--pool", "lab")
			if !strings.Contains(out, hash) || !strings.Contains(out, "rack7-node3") || strings.Contains(out, reg["ek_sha256"]) {
				t.Errorf("list --pool lab:\n%s", out)
			}

			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"register", "--ek-sha256", hash, "--pool", "lab"}, "already registered"},
				{[]string{"register", "--ek-sha256", "xyz", "--pool", "lab"}, "64 hex digits"},
				{[]string{"register", "--ek-sha256", hash, "--pool", "default"}, "does not accept"},
				{[]string{"register", "--ek-sha256", hash}, "needs --config"},
				{[]string{"unregister", "--ek-sha256", strings.Repeat("0", 64)}, "no such TPM EK registration"},
			} {
				code, _, stderr := cli(t, append(append([]string{"tpm"}, c.args...), "--config", cfg)...)
				if code == 0 || !strings.Contains(stderr, c.want) {
					t.Errorf("tpm %v: exit %d, stderr %q; want an error saying %q", c.args, code, stderr, c.want)
				}
			}

			mustCLI(t, "tpm", "unregister", "--config", cfg, "--ek-sha256", hash)
			out, _ = mustCLI(t, "tpm", "list", "--config", cfg, "--json")
			var rows []map[string]any
			if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0]["ek_sha256"] != reg["ek_sha256"] {
				t.Errorf("list --json after unregister = %s (%v)", out, err)
			}

			// A pool admitting only certified EKs needs roots; a tpm policy
			// needs the method.
			editConfig(t, cfg, func(c map[string]any) {
				delete(c, "attestation")
				pools := c["pools"].([]any)
				pools[len(pools)-1] = map[string]any{"name": "lab", "methods": []string{"tpm"}, "tpm": map[string]any{"ek": "certificate"}}
			})
			if code, _, stderr := cli(t, "tpm", "list", "--config", cfg); code == 0 || !strings.Contains(stderr, "no manufacturer roots are configured") {
				t.Errorf("ek certificate without roots: exit %d, %q", code, stderr)
			}
			editConfig(t, cfg, func(c map[string]any) {
				pools := c["pools"].([]any)
				pools[len(pools)-1] = map[string]any{"name": "lab", "methods": []string{"token"}, "tpm": map[string]any{}}
			})
			if code, _, stderr := cli(t, "tpm", "list", "--config", cfg); code == 0 || !strings.Contains(stderr, "methods lacks tpm") {
				t.Errorf("tpm policy without the method: exit %d, %q", code, stderr)
			}
		})
	}
}
