package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
)

// runLockKey is the first key of the PostgreSQL session advisory locks
// TryLock takes; the second is a hash of the current schema and the
// lock's name, so stores sharing a server but not a schema do not exclude
// each other.
const runLockKey int32 = 0x776b726e // "wkrn"

// unlockTimeout bounds releasing a PostgreSQL lock; past it the
// connection is closed, which releases the lock as well.
const unlockTimeout = 10 * time.Second

const (
	pgTryLock = `SELECT pg_try_advisory_lock($1, hashtext(COALESCE(current_schema(), '') || '/' || $2::text))`
	pgUnlock  = `SELECT pg_advisory_unlock($1, hashtext(COALESCE(current_schema(), '') || '/' || $2::text))`
)

// TryLock takes the lock called name without waiting, so that one
// replica at a time runs a periodic job such as Prune or the CRL builder.
// ok is false when another holder has it. When ok, the caller must call
// unlock, once it is done; further calls do nothing.
//
// On PostgreSQL the lock is a session advisory lock held on a connection
// taken from the pool for the purpose, so it excludes every Store on the
// same database and schema, in any process. If that connection is lost,
// the server releases the lock while the holder still runs: jobs guarded
// by it must stay safe to run twice at once, the lock only saves the
// duplicate work. On SQLite, which one process uses, the lock is held in
// this Store and excludes only its other callers.
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	if name == "" {
		return nil, false, errors.New("store: lock: name is empty")
	}
	if s.driver != DriverPostgres {
		return s.tryLocalLock(name)
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("store: lock %q: %w", name, err)
	}
	if err := conn.QueryRowContext(ctx, pgTryLock, runLockKey, name).Scan(&ok); err != nil || !ok {
		_ = conn.Close()
		if err != nil {
			return nil, false, fmt.Errorf("store: lock %q: %w", name, err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			var released bool
			if err := conn.QueryRowContext(ctx, pgUnlock, runLockKey, name).Scan(&released); err != nil || !released {
				// Drop the connection rather than return it to the pool
				// still holding the lock; the server releases it.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			_ = conn.Close()
		})
	}, true, nil
}

// tryLocalLock is TryLock on SQLite.
func (s *Store) tryLocalLock(name string) (func(), bool, error) {
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if s.locks[name] {
		return nil, false, nil
	}
	s.locks[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.locksMu.Lock()
			delete(s.locks, name)
			s.locksMu.Unlock()
		})
	}, true, nil
}
