package store

import (
	"context"
	"database/sql"
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
// replica at a time runs a periodic job such as Prune. ok is false when
// another holder has it. When ok, the caller must call unlock, once it is
// done; further calls do nothing. It is TryLease for locks held for one
// job.
//
// On PostgreSQL the lock is a session advisory lock held on a connection
// taken from the pool for the purpose, so it excludes every Store on the
// same database and schema, in any process. If that connection is lost,
// the server releases the lock while the holder still runs: jobs guarded
// by it must stay safe to run twice at once, the lock only saves the
// duplicate work. On SQLite, which one process uses, the lock is held in
// this Store and excludes only its other callers.
func (s *Store) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	l, ok, err := s.TryLease(ctx, name)
	if !ok {
		return nil, ok, err
	}
	return l.Release, true, nil
}

// Lease is a named lock held until Release, or, on PostgreSQL, until the
// connection holding it is lost. It is safe for concurrent use.
type Lease struct {
	name string
	// conn holds the PostgreSQL session lock; nil on SQLite.
	conn *sql.Conn
	once sync.Once
	// release frees the lock; Release runs it once.
	release func()
}

// TryLease takes the lock called name without waiting, to be held for
// long, such as by the replica elected to build CRLs for as long as it
// runs. ok is false when another holder has it. The locks are those of
// TryLock: a name taken by one is refused to the other.
//
// A holder that keeps a lease calls Check now and then: a lease whose
// PostgreSQL connection was lost (the server restarted, the network
// failed, an operator ended the session) has been released by the server
// and may be someone else's already.
func (s *Store) TryLease(ctx context.Context, name string) (lease *Lease, ok bool, err error) {
	if name == "" {
		return nil, false, errors.New("store: lock: name is empty")
	}
	if s.driver != DriverPostgres {
		return s.tryLocalLease(name)
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
	return &Lease{name: name, conn: conn, release: func() {
		ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		var released bool
		if err := conn.QueryRowContext(ctx, pgUnlock, runLockKey, name).Scan(&released); err != nil || !released {
			// Drop the connection rather than return it to the pool
			// still holding the lock; the server releases it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}}, true, nil
}

// Check returns an error when the lease may be lost: on PostgreSQL, when
// the connection holding it does not answer (a live session keeps its
// advisory locks, a lost one has none). On SQLite it returns nil. After
// an error, Release the lease and take it again with TryLease.
func (l *Lease) Check(ctx context.Context) error {
	if l.conn == nil {
		return nil
	}
	var one int
	if err := l.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: lock %q may be lost: %w", l.name, err)
	}
	return nil
}

// Release gives the lease up. Further calls do nothing.
func (l *Lease) Release() {
	l.once.Do(l.release)
}

// tryLocalLease is TryLease on SQLite.
func (s *Store) tryLocalLease(name string) (*Lease, bool, error) {
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if s.locks[name] {
		return nil, false, nil
	}
	s.locks[name] = true
	return &Lease{name: name, release: func() {
		s.locksMu.Lock()
		delete(s.locks, name)
		s.locksMu.Unlock()
	}}, true, nil
}
