package store_test

import (
	"testing"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestTryLock: while one holder has a named lock, other TryLocks of that
// name (on PostgreSQL, from another Store on the same database) fail
// without waiting, other names are free, and after unlock it can be taken
// again. Unlocking twice is harmless.
func TestTryLock(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			var first, second *store.Store
			if driver == store.DriverPostgres {
				// Two stores on one database, as two replicas would be.
				cfg := storetest.Config(t, driver)
				var err error
				if first, err = store.Open(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				defer first.Close()
				if second, err = store.Open(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				defer second.Close()
			} else {
				// SQLite is used by one process: one store.
				first = storetest.Open(t, driver)
				second = first
			}
			try := func(s *store.Store, name string) func() {
				t.Helper()
				unlock, ok, err := s.TryLock(ctx, name)
				if err != nil {
					t.Fatalf("TryLock(%q): %v", name, err)
				}
				if ok != (unlock != nil) {
					t.Fatalf("TryLock(%q): ok = %v with unlock %v", name, ok, unlock != nil)
				}
				return unlock
			}

			unlock := try(first, "prune")
			if unlock == nil {
				t.Fatal("ok/first-takes-it: TryLock = false")
			}
			if try(second, "prune") != nil {
				t.Fatal("ok/second-is-refused-while-held: TryLock = true")
			}
			if try(first, "prune") != nil {
				t.Fatal("ok/holder-store-is-refused-too: TryLock = true")
			}
			other := try(second, "crl")
			if other == nil {
				t.Fatal("ok/other-name-is-free: TryLock = false")
			}
			other()
			unlock()
			unlock()
			again := try(second, "prune")
			if again == nil {
				t.Fatal("ok/taken-again-after-unlock: TryLock = false")
			}
			again()

			if _, _, err := first.TryLock(ctx, ""); err == nil {
				t.Fatal("fail/empty-name: TryLock succeeded")
			}
		})
	}
}

// TestTryLock_SchemasDoNotExclude: on PostgreSQL, stores in other schemas
// of one database hold locks of the same name independently.
func TestTryLock_SchemasDoNotExclude(t *testing.T) {
	t.Parallel()
	a, b := storetest.Open(t, store.DriverPostgres), storetest.Open(t, store.DriverPostgres)
	ua, ok, err := a.TryLock(ctxT(t), "prune")
	if err != nil || !ok {
		t.Fatalf("TryLock in schema a = %v, %v", ok, err)
	}
	defer ua()
	ub, ok, err := b.TryLock(ctxT(t), "prune")
	if err != nil || !ok {
		t.Fatalf("TryLock in schema b = %v, %v; want the lock, schemas are separate", ok, err)
	}
	ub()
}

// TestTryLease: a lease excludes TryLock and TryLease of its name, Check
// passes while it is held, and on PostgreSQL a lease whose connection was
// ended fails Check and is free for another store to take.
func TestTryLease(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, driver)
			first := storetest.OpenConfig(t, cfg)
			second := first // SQLite is used by one process: one store
			if driver == store.DriverPostgres {
				second = storetest.OpenConfig(t, cfg)
			}
			lease, ok, err := first.TryLease(ctx, "crl")
			if err != nil || !ok {
				t.Fatalf("ok/first-takes-it: TryLease = %v, %v", ok, err)
			}
			if err := lease.Check(ctx); err != nil {
				t.Fatalf("ok/check-while-held: %v", err)
			}
			if _, ok, err := second.TryLease(ctx, "crl"); ok || err != nil {
				t.Fatalf("ok/lease-refused-while-held: TryLease = %v, %v", ok, err)
			}
			if _, ok, err := second.TryLock(ctx, "crl"); ok || err != nil {
				t.Fatalf("ok/lock-refused-while-held: TryLock = %v, %v", ok, err)
			}
			if driver == store.DriverPostgres {
				if n := storetest.TerminateLockHolders(t, cfg); n != 1 {
					t.Fatalf("ended %d lock connections, want 1", n)
				}
				if err := lease.Check(ctx); err == nil {
					t.Fatal("fail/check-after-connection-ended: Check = nil")
				}
			}
			lease.Release()
			lease.Release()
			again, ok, err := second.TryLease(ctx, "crl")
			if err != nil || !ok {
				t.Fatalf("ok/taken-after-release-or-loss: TryLease = %v, %v", ok, err)
			}
			again.Release()
			if _, _, err := first.TryLease(ctx, ""); err == nil {
				t.Fatal("fail/empty-name: TryLease succeeded")
			}
		})
	}
}
