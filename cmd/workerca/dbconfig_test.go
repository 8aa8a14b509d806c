package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/workerca/workerca/store"
)

// TestDatabaseTuning reads the ledger's pool and group-commit settings
// from workerca.json, keeps them when --db replaces the ledger, and
// refuses negative values when the store opens.
func TestDatabaseTuning(t *testing.T) {
	t.Parallel()
	db := databaseConfig{Driver: store.DriverSQLite, DSN: "ledger.db", MaxConns: 4, MaxBatch: 1, MaxBatches: 2}
	got := storeConfig("/etc/workerca", db, "")
	if got.DSN != "/etc/workerca/ledger.db" || got.MaxConns != 4 || got.MaxBatch != 1 || got.MaxBatches != 2 {
		t.Errorf("storeConfig = %+v", got)
	}
	got = storeConfig("/etc/workerca", db, "postgres://u:p@db/x")
	if got.Driver != store.DriverPostgres || got.DSN != "postgres://u:p@db/x" || got.MaxConns != 4 || got.MaxBatch != 1 || got.MaxBatches != 2 {
		t.Errorf("storeConfig with --db = %+v, want the override's ledger with the file's tuning", got)
	}

	dir := filepath.Join(t.TempDir(), "ca")
	mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain)
	cfg := filepath.Join(dir, fileConfigName)
	setDB := func(key string, v int) {
		editConfig(t, cfg, func(c map[string]any) { c["database"].(map[string]any)[key] = v })
	}
	setDB("max_batch", 1)
	setDB("max_conns", 4)
	mustCLI(t, "prune", "--config", cfg, "--dry-run")
	setDB("max_batch", -1)
	if code, _, stderr := cli(t, "prune", "--config", cfg, "--dry-run"); code == 0 || !strings.Contains(stderr, "must not be negative") {
		t.Errorf("max_batch -1: exit %d, stderr %q; want a refusal", code, stderr)
	}
}
