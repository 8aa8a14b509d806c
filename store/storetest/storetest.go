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
	cfg := Config(tb, driver)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("storetest: open %s store: %v", driver, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("storetest: close %s store: %v", driver, err)
		}
	})
	return s
}

// Config returns the configuration of a fresh, empty database of the given
// driver, not yet opened: a file in tb.TempDir() for SQLite, a new schema
// (dropped at the end of the test) for PostgreSQL. Tests use it to open the
// same database more than once.
func Config(tb testing.TB, driver string) store.Config {
	tb.Helper()
	switch driver {
	case store.DriverSQLite:
		return store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(tb.TempDir(), "workerca.db")}
	case store.DriverPostgres:
		return store.Config{Driver: store.DriverPostgres, DSN: postgresSchema(tb)}
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

// withSearchPath sets search_path in a URL or key/value DSN; pgx sends it
// to the server as a run-time parameter.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}
