package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestTokenCreate mints tokens with the CLI on each ledger and checks what
// it prints and what it stores; refusals print no token.
func TestTokenCreate(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			sc := store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, fileDatabase)}
			initArgs := []string{"init", "--dir", dir, "--trust-domain", testTrustDomain}
			if driver == store.DriverPostgres {
				sc = storetest.Config(t, driver)
				initArgs = append(initArgs, "--db", sc.DSN)
			}
			mustCLI(t, initArgs...)
			requireAdminKey(t, dir, sc)
			cfg := filepath.Join(dir, fileConfigName)
			create := func(extra ...string) (int, string, string) {
				return cli(t, append([]string{"token", "create", "--config", cfg}, extra...)...)
			}

			// Plain: the token alone on stdout, a note on stderr.
			code, stdout, stderr := create("--pool", "default", "--worker", "host-01", "--ttl", "1h")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("stdout = %q, want the token alone on one line", stdout)
			}
			plain, err := credential.Parse(credential.EnrollmentToken, lines[0])
			if err != nil {
				t.Fatalf("stdout %q is not a wct_ token: %v", stdout, err)
			}
			if !strings.Contains(stderr, "token for default/host-01, single use, expires") {
				t.Errorf("stderr = %q", stderr)
			}
			requireStoredToken(t, sc, plain, "host-01", time.Now().Add(time.Hour))

			// JSON.
			before := time.Now()
			code, stdout, stderr = create("--pool", "default", "--worker", "host-02", "--ttl", "90m", "--json")
			if code != 0 {
				t.Fatalf("--json: exit %d\n%s", code, stderr)
			}
			var out struct {
				Token     string    `json:"token"`
				ID        string    `json:"id"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&out); err != nil {
				t.Fatalf("--json printed %q: %v", stdout, err)
			}
			tok, err := credential.Parse(credential.EnrollmentToken, out.Token)
			if err != nil || tok.ID != out.ID {
				t.Fatalf("--json token %q, id %q: %v", out.Token, out.ID, err)
			}
			if d := out.ExpiresAt.Sub(before.Add(90 * time.Minute)); d < -time.Second || d > 10*time.Second {
				t.Errorf("expires_at %s is not 90m from now (off by %s)", out.ExpiresAt, d)
			}
			if out.ExpiresAt.Location() != time.UTC {
				t.Errorf("expires_at %q is not UTC", stdout)
			}
			requireStoredToken(t, sc, tok, "host-02", out.ExpiresAt)

			refusals := []struct {
				name string
				args []string
				want string
			}{
				{"fail/unknown-pool", []string{"--pool", "nosuchpool", "--worker", "host-03"}, "unknown pool"},
				{"fail/bad-worker-id", []string{"--pool", "default", "--worker", "Host 03!"}, "worker_id"},
				{"fail/ttl-over-maximum", []string{"--pool", "default", "--worker", "host-03", "--ttl", "200h"}, "ttl"},
			}
			for _, r := range refusals {
				code, stdout, stderr := create(r.args...)
				if code != 1 || !strings.Contains(stderr, r.want) {
					t.Errorf("%s: exit %d, stderr %q; want 1 and %q", r.name, code, stderr, r.want)
				}
				if stdout != "" {
					t.Errorf("%s: stdout %q, want nothing", r.name, stdout)
				}
			}
		})
	}
}

// requireStoredToken checks the ledger row of tok: bound to pool default
// and worker, expiring at expires, created by the CLI, holding the hash of
// the secret, unused.
func requireStoredToken(t *testing.T, sc store.Config, tok credential.Credential, worker string, expires time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	row, err := st.Token(ctx, tok.ID)
	if err != nil {
		t.Fatalf("token %s not in the ledger: %v", tok.ID, err)
	}
	if row.Pool != "default" || row.WorkerID != worker || row.CreatedBy != "cli" || row.UsedAt != nil || !tok.Matches(row.SecretHash) {
		t.Errorf("token row = %+v; want pool default, worker %s, created by cli, unused, the token's hash", row, worker)
	}
	if d := row.ExpiresAt.Sub(expires); d < -10*time.Second || d > 10*time.Second {
		t.Errorf("token row expires %s, want about %s", row.ExpiresAt, expires)
	}
}
