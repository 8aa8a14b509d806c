// Package storetest gives tests real, isolated stores: SQLite in a
// temporary directory and PostgreSQL in a schema of its own, so tests and
// packages may run in parallel against one server.
//
//	func TestThing(t *testing.T) {
//		storetest.ForEach(t, func(t *testing.T, s *store.Store) {
//			t.Parallel()
//			// use s
//		})
//	}
//
// PostgreSQL runs when WORKERCA_TEST_POSTGRES_DSN names a database the
// tests may create schemas in; scripts/test.sh starts a local server and
// sets it. Without it the PostgreSQL subtests skip, except under CI=true,
// where they fail: CI must never skip PostgreSQL silently.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/workerca/workerca/store"
)

// PostgresDSNEnv is the environment variable naming the PostgreSQL
// database tests run against.
const PostgresDSNEnv = "WORKERCA_TEST_POSTGRES_DSN"

// Drivers returns the drivers tests must run against: store.DriverSQLite
// always, and store.DriverPostgres. Without PostgresDSNEnv it calls
// t.Fatal under CI=true; otherwise the PostgreSQL subtests skip (in
// Config), so that the skip shows in test output with how to run them.
func Drivers(t testing.TB) []string {
	t.Helper()
	if os.Getenv(PostgresDSNEnv) == "" && os.Getenv("CI") == "true" {
		t.Fatalf("storetest: %s is not set, and CI=true forbids skipping the PostgreSQL tests; run scripts/test.sh", PostgresDSNEnv)
	}
	return []string{store.DriverSQLite, store.DriverPostgres}
}

// ForEach runs fn as a subtest per driver, named after it ("sqlite",
// "postgres"), each with a fresh, migrated store that is closed when the
// subtest ends.
func ForEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range Drivers(t) {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh, migrated store of the given driver, closed at the
// end of the test.
func Open(tb testing.TB, driver string) *store.Store {
	tb.Helper()
	return OpenConfig(tb, Config(tb, driver))
}

// OpenConfig opens a store on cfg (from Config), closed at the end of the
// test. Opening one Config twice gives two stores on one database, as two
// replicas would have.
func OpenConfig(tb testing.TB, cfg store.Config) *store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("storetest: open %s store: %v", cfg.Driver, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("storetest: close %s store: %v", cfg.Driver, err)
		}
	})
	return s
}

// TerminateListeners ends the PostgreSQL connections on which stores
// opened with cfg listen for revocation notices (store.ListenRevocations,
// whose connection runs nothing but LISTEN), as a network failure or an
// operator would, and waits until they are gone. It returns how many it
// ended.
func TerminateListeners(tb testing.TB, cfg store.Config) int {
	tb.Helper()
	return terminate(tb, cfg, `query LIKE 'LISTEN %'`)
}

// TerminateLockHolders ends the PostgreSQL connections on which stores
// opened with cfg hold advisory locks (store.TryLock, store.TryLease),
// and waits until they are gone. It returns how many it ended.
func TerminateLockHolders(tb testing.TB, cfg store.Config) int {
	tb.Helper()
	return terminate(tb, cfg, `pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`)
}

// terminate ends the connections of cfg's stores that match cond.
func terminate(tb testing.TB, cfg store.Config, cond string) int {
	tb.Helper()
	if cfg.Driver != store.DriverPostgres {
		tb.Fatalf("storetest: terminating connections needs a PostgreSQL store, not %q", cfg.Driver)
	}
	name, err := applicationName(cfg.DSN)
	if err != nil || name == "" {
		tb.Fatalf("storetest: terminate: no application_name in the DSN: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv(PostgresDSNEnv))
	if err != nil {
		tb.Fatalf("storetest: terminate: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid() AND `+cond, name).Scan(&n); err != nil {
		tb.Fatalf("storetest: terminate: %v", err)
	}
	return n
}

// testMaxConns is the PostgreSQL pool of a test store.
const testMaxConns = 4

// Config returns the configuration of a fresh, empty database of the given
// driver, not yet opened: a file in tb.TempDir() for SQLite, a new schema
// (dropped at the end of the test) for PostgreSQL, whose connections carry
// the schema's name as their application_name. Tests use it to open the
// same database more than once.
func Config(tb testing.TB, driver string) store.Config {
	tb.Helper()
	switch driver {
	case store.DriverSQLite:
		return store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(tb.TempDir(), "workerca.db")}
	case store.DriverPostgres:
		// Four connections, not the server's default 16: tests open many
		// stores at once, and each keeps its pool open, against one
		// PostgreSQL's max_connections (100 by default).
		return store.Config{Driver: store.DriverPostgres, DSN: postgresSchema(tb), MaxConns: testMaxConns}
	default:
		tb.Fatalf("storetest: unknown driver %q", driver)
		return store.Config{}
	}
}

// postgresSchema creates a schema with a random name, drops it at the end
// of the test, and returns a DSN whose search_path is that schema.
func postgresSchema(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(PostgresDSNEnv)
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("storetest: %s is not set, and CI=true forbids skipping the PostgreSQL tests", PostgresDSNEnv)
		}
		tb.Skipf("storetest: PostgreSQL tests skipped: %s is not set; run scripts/test.sh, which starts a local PostgreSQL and sets it", PostgresDSNEnv)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	schema := "test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("storetest: connect to %s: %v", PostgresDSNEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("storetest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("storetest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("storetest: drop schema %s: %v", schema, err)
		}
	})
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		tb.Fatalf("storetest: %s: %v", PostgresDSNEnv, err)
	}
	return dsn
}

// withSearchPath sets search_path and application_name to schema in a
// URL or key/value DSN; pgx sends them to the server as run-time
// parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		q.Set("application_name", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema + " application_name=" + schema, nil
}

// applicationName reads application_name back from a DSN of
// withSearchPath.
func applicationName(dsn string) (string, error) {
	if isURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		return u.Query().Get("application_name"), nil
	}
	name := ""
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "application_name="); ok {
			name = v
		}
	}
	return name, nil
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
