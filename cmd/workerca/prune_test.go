package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
)

// TestPruneCommand: --dry-run counts and keeps, a pass deletes what is
// past retention and keeps the rest, and the JSON says so.
func TestPruneCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain)
	cfg := filepath.Join(dir, fileConfigName)
	st, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, fileDatabase)})
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-30 * 24 * time.Hour).UTC()
	for serial, retain := range map[string]time.Time{"0a01": past.Add(4 * 24 * time.Hour), "0a02": time.Now().Add(24 * time.Hour)} {
		err := st.RecordIssuance(t.Context(), store.Issuance{Certificate: &store.Certificate{
			Serial: serial, WorkerID: "w-" + serial, Pool: "default", NotBefore: past, NotAfter: past.Add(24 * time.Hour),
			DER: []byte{0x30}, IssuedAt: past, RetainUntil: retain,
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	type result struct {
		DryRun       bool  `json:"dry_run"`
		Certificates int64 `json:"certificates"`
		Artifacts    int64 `json:"artifacts"`
		Challenges   int64 `json:"challenges"`
		Batches      int   `json:"batches"`
	}
	run := func(args ...string) result {
		t.Helper()
		stdout, _ := mustCLI(t, append([]string{"prune", "--config", cfg, "--json"}, args...)...)
		var r result
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("%q: %v", stdout, err)
		}
		return r
	}
	if r := run("--dry-run"); !r.DryRun || r.Certificates != 1 {
		t.Fatalf("dry run: %+v, want 1 certificate", r)
	}
	if r := run(); r.DryRun || r.Certificates != 1 || r.Batches != 1 {
		t.Fatalf("prune: %+v, want 1 certificate in 1 batch", r)
	}
	if r := run(); r.Certificates != 0 {
		t.Fatalf("second prune: %+v, want nothing left to delete", r)
	}
	st, err = store.Open(t.Context(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(dir, fileDatabase)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Certificate(t.Context(), "0a01"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("past retention: %v, want deleted", err)
	}
	if _, err := st.Certificate(t.Context(), "0a02"); err != nil {
		t.Errorf("within retention: %v, want kept", err)
	}
	if code, _, _ := cli(t, "prune"); code != 2 {
		t.Errorf("prune without --config: exit %d, want 2", code)
	}
}
