// Package store persists the certificate authority's state: the ledger of
// issued certificates, revocations and CRLs, artifact registrations,
// enrollment tokens, API keys and the audit log.
//
// It is the storage authority in Boulder's sense: it decides nothing and
// only records, atomically, what its callers have decided. It imports none
// of the project's other packages.
//
// A Store runs on SQLite (the default, pure Go, no cgo) or PostgreSQL:
//
//	s, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: "/var/lib/workerca/workerca.db"})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//
//	err = s.RecordIssuance(ctx, store.Issuance{
//		Certificate:      cert,
//		TokenID:          tokenID,
//		MaxActiveWorkers: 100,
//		Now:              now,
//		Audit:            store.AuditEvent{Actor: "token:" + tokenID, Action: "certificate.issued", Target: cert.Serial},
//	})
//	switch {
//	case errors.Is(err, store.ErrTokenUsed): // the token was consumed by someone else
//	case errors.Is(err, store.ErrPoolFull): // the pool's cap is reached
//	}
//
// # History, artifacts, retention
//
// Every certificate stays in the ledger until its RetainUntil, which
// RegisterArtifact raises to the expiry of the latest artifact
// registration it signed; a revoked one stays, besides, until a CRL
// issued after its notAfter has listed it. WorkerCertificates pages
// through a worker's history, optionally only what was valid at an
// instant. Prune deletes what retention no longer requires, in small
// batches, and TryLock elects the replica that runs it:
//
//	unlock, ok, err := s.TryLock(ctx, "prune")
//	if err != nil || !ok {
//		return err // another replica prunes
//	}
//	defer unlock()
//	res, err := s.Prune(ctx, store.PruneOptions{Now: now})
//
// # Several replicas
//
// Replicas sharing a PostgreSQL database keep in step through it. Revoke
// and SaveCRL send notices (LISTEN/NOTIFY, on a channel of the schema)
// when they commit; ListenRevocations delivers them to each replica, with
// a Resync after every (re)connect since notices sent meanwhile are lost;
// RevokedShards tells a replica that may have missed some which CRLs to
// rebuild. TryLease holds a lock for long, such as the one electing the
// replica that builds CRLs, and Lease.Check tells its holder whether it
// still has it:
//
//	go s.ListenRevocations(ctx, func(n store.RevocationNotice) {
//		// drop what was derived from n.Serials, or everything on n.Resync
//	})
//
// Open applies the package's versioned, hand-written SQL migrations and
// refuses a database whose schema is newer than it knows (ErrSchemaTooNew).
//
// # Time
//
// The package never reads the clock: every operation that needs the
// current time takes it from its caller. Times are stored in UTC, truncated
// to microseconds (PostgreSQL's precision), and read back as UTC. On
// SQLite they are stored as fixed-width text, "2006-01-02
// 15:04:05.000000+00:00", so that SQL comparisons and ORDER BY on the text
// agree with time order to the microsecond. Methods that write a model
// normalize its times in place, so after a successful write the caller's
// value equals what a later read returns.
//
// # Errors
//
// Failures the caller can act on are reported with the sentinel errors
// (ErrNotFound, ErrTokenUsed, ErrTokenExpired, ErrPoolFull, ErrDuplicate,
// ErrChallengeUnknown, ErrChallengeUsed, ErrChallengeExpired, ErrReplay,
// ErrStale, ErrRevoked, ErrInvalidCursor, ErrSchemaTooNew), wrapped with
// a "store: " prefix and checked with errors.Is. Any other error is a
// database failure that is none of them.
package store
