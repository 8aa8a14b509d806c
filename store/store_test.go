package store_test

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// epoch is the fixed instant tests are pinned to; it has a sub-second part
// so that precision bugs show.
func epoch() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC) }

func testCert(serial, worker, pool string, now time.Time) *store.Certificate {
	return &store.Certificate{
		Serial:             serial,
		WorkerID:           worker,
		Pool:               pool,
		SPIFFEID:           "spiffe://example.org/worker/" + worker,
		SPKISHA256:         "ab12",
		NotBefore:          now.Add(-time.Minute),
		NotAfter:           now.Add(time.Hour),
		Method:             "token",
		EnrollmentID:       "tok",
		AttestationSubject: "token:tok",
		Evidence:           `{"k":"v"}`,
		DER:                []byte{0x30, 0x03, 0x02, 0x01, 0x01},
		IssuedAt:           now,
		RetainUntil:        now.Add(24 * time.Hour),
	}
}

func testToken(id, pool string, now time.Time) *store.EnrollmentToken {
	return &store.EnrollmentToken{
		ID:         id,
		SecretHash: "0011",
		Pool:       pool,
		WorkerID:   "worker-" + id,
		CreatedBy:  "cli",
		CreatedAt:  now,
		ExpiresAt:  now.Add(time.Hour),
	}
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestOpen(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if got, want := s.Driver(), path.Base(t.Name()); got != want {
			t.Errorf("Driver() = %q, want %q", got, want)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatalf("SchemaVersion: %v", err)
		}
		if v != store.LatestVersion() {
			t.Errorf("SchemaVersion = %d, want %d", v, store.LatestVersion())
		}
	})
}

func TestOpen_ReopenIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, driver)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("first Open: %v", err)
			}
			if err := s.CreateToken(ctx, testToken("t1", "p", epoch()), store.AuditEvent{}); err != nil {
				t.Fatalf("CreateToken: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for i := range 2 {
				s, err = store.Open(ctx, cfg)
				if err != nil {
					t.Fatalf("reopen %d: %v", i, err)
				}
				v, err := s.SchemaVersion(ctx)
				if err != nil || v != store.LatestVersion() {
					t.Errorf("reopen %d: SchemaVersion = %d, %v; want %d", i, v, err, store.LatestVersion())
				}
				rows, err := store.QueryStrings(ctx, s, "SELECT CAST(version AS TEXT) FROM schema_migrations")
				if err != nil || len(rows) != store.LatestVersion() {
					t.Errorf("reopen %d: schema_migrations rows = %v, %v; want one per migration", i, rows, err)
				}
				if _, err := s.Token(ctx, "t1"); err != nil {
					t.Errorf("reopen %d: data lost: %v", i, err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

func TestOpen_ConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, driver)
			const n = 6
			stores := make([]*store.Store, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = store.Open(ctx, cfg)
				})
			}
			close(start)
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Errorf("Open %d: %v", i, errs[i])
					continue
				}
				v, err := stores[i].SchemaVersion(ctx)
				if err != nil || v != store.LatestVersion() {
					t.Errorf("Open %d: SchemaVersion = %d, %v", i, v, err)
				}
				if err := stores[i].Close(); err != nil {
					t.Errorf("Close %d: %v", i, err)
				}
			}
		})
	}
}

func TestOpen_SchemaTooNew(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, driver)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			err = store.ExecRaw(ctx, s, "INSERT INTO schema_migrations (version) VALUES (?)", store.LatestVersion()+1)
			if cerr := s.Close(); err != nil || cerr != nil {
				t.Fatalf("record future version: %v; close: %v", err, cerr)
			}
			s, err = store.Open(ctx, cfg)
			if !errors.Is(err, store.ErrSchemaTooNew) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Open on newer schema: err = %v, want ErrSchemaTooNew", err)
			}
		})
	}
}

func TestOpen_ConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  store.Config
	}{
		{"fail/unknown-driver", store.Config{Driver: "mysql", DSN: "x"}},
		{"fail/sqlite-without-dsn", store.Config{Driver: store.DriverSQLite}},
		{"fail/default-driver-without-dsn", store.Config{}},
		{"fail/postgres-without-dsn", store.Config{Driver: store.DriverPostgres}},
		{"fail/postgres-bad-dsn", store.Config{Driver: store.DriverPostgres, DSN: "postgres://%zz"}},
		{"fail/sqlite-directory-missing", store.Config{DSN: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := store.Open(ctxT(t), tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

func TestOpen_SQLiteFileIsPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		dsn  func(path string) string
	}{
		{"ok/plain-path", func(p string) string { return p }},
		{"ok/plain-path-with-params", func(p string) string { return p + "?_pragma=cache_size(-2000)" }},
		{"ok/file-uri", func(p string) string { return "file:" + p + "?cache=private" }},
		{"ok/file-uri-triple-slash", func(p string) string { return "file://" + p }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			path := filepath.Join(dir, tc.name[3:]+".db")
			s, err := store.Open(ctx, store.Config{DSN: tc.dsn(path)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.AddAudit(ctx, store.AuditEvent{At: epoch(), Action: "x"}); err != nil {
				t.Fatalf("AddAudit: %v", err)
			}
			for _, p := range []string{path, path + "-wal"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("stat: %v (WAL mode not enabled?)", err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("%s mode = %v, want 0600", filepath.Base(p), got)
				}
			}
			mode, err := store.QueryStrings(ctx, s, "PRAGMA journal_mode")
			if err != nil || len(mode) != 1 || mode[0] != "wal" {
				t.Errorf("journal_mode = %v, %v; want wal", mode, err)
			}
			fk, err := store.QueryStrings(ctx, s, "SELECT CAST(foreign_keys AS TEXT) FROM pragma_foreign_keys")
			if err != nil || len(fk) != 1 || fk[0] != "1" {
				t.Errorf("foreign_keys = %v, %v; want 1", fk, err)
			}
		})
	}
}
