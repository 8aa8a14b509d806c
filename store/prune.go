package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// auditTimeout bounds writing Prune's audit event after its context was
// canceled.
const auditTimeout = 30 * time.Second

// DefaultPruneBatch is the number of rows Prune deletes per statement
// when PruneOptions.BatchSize is zero.
const DefaultPruneBatch = 500

// PruneOptions says what Prune deletes and how.
type PruneOptions struct {
	// Now is the current time: rows whose retention ended before it go.
	Now time.Time
	// BatchSize is the number of rows deleted per statement, each in its
	// own transaction; zero means DefaultPruneBatch.
	BatchSize int
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// Actor names who pruned, for the audit log; "" means "system".
	Actor string
}

// PruneResult counts what Prune deleted, or with DryRun would delete.
type PruneResult struct {
	// Certificates, Artifacts, Challenges and TPMSessions count the rows
	// deleted from each table.
	Certificates, Artifacts, Challenges, TPMSessions int64
	// Batches counts the delete statements that deleted at least one row;
	// with DryRun, the ones that would.
	Batches int
}

// pruneTarget is one table Prune deletes from: the rows of table whose
// key matches where, with one argument per "?" in where, all o.Now.
type pruneTarget struct {
	table, key, where string
	count             *int64
}

// certificatePruneWhere selects the ledger rows Prune may delete: those
// whose retention ended (retain_until < now), that no unexpired artifact
// registration relies on, and that, when revoked, a CRL has listed after
// the certificate expired. RFC 5280 §3.3 keeps a revoked certificate's
// entry until it has appeared on one regularly scheduled CRL issued after
// the certificate's notAfter. A CRL build lists every revoked entry whose
// notAfter or revocation time is at or after the previous CRL's
// thisUpdate, so once the shard's stored CRL has a thisUpdate after both
// the certificate's notAfter and its revocation, some CRL of the shard
// issued after notAfter has listed it and the row is no longer needed.
// Rows without a recorded shard (placed by serial, which the store does
// not know how to do) wait until there is a stored CRL and every stored
// CRL is that late.
const certificatePruneWhere = `certificates.retain_until < ?
	AND NOT EXISTS (SELECT 1 FROM artifacts
		WHERE artifacts.serial = certificates.serial AND artifacts.expires_at >= ?)
	AND (certificates.revoked_at IS NULL
		OR (certificates.crl_shard IS NOT NULL AND EXISTS (SELECT 1 FROM crls
			WHERE crls.shard = certificates.crl_shard
				AND crls.this_update > certificates.not_after
				AND crls.this_update > certificates.revoked_at))
		OR (certificates.crl_shard IS NULL AND EXISTS (SELECT 1 FROM crls) AND NOT EXISTS (SELECT 1 FROM crls
			WHERE crls.this_update <= certificates.not_after
				OR crls.this_update <= certificates.revoked_at)))`

// Prune deletes what retention no longer requires, as of o.Now: artifact
// registrations that expired (expires_at < Now), then ledger rows whose
// retention ended (retain_until < Now) unless an unexpired registration
// relies on them or, when revoked, until a CRL of their shard issued
// after their notAfter (RFC 5280 §3.3) has listed them, then enrollment
// challenges that expired, used or not.
//
// It never blocks issuance for long: it takes no table lock and deletes
// in batches of o.BatchSize rows, each one statement in its own short
// transaction, until a batch deletes fewer; it checks ctx between
// batches. On PostgreSQL a batch skips rows other transactions hold
// rather than wait for them, and judges a row changed meanwhile by its
// new version, so a row whose retention a concurrent RegisterArtifact
// raised, or that a concurrent Revoke revoked, stays.
//
// When it deleted anything, it records one audit event "ledger.pruned" with the
// counts as its detail. Run it on one replica at a time (see TryLock);
// concurrent runs are safe, only wasteful. On error it returns what was
// deleted before the error, with the error; the result is never nil.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (*PruneResult, error) {
	if o.Now.IsZero() {
		return &PruneResult{}, errors.New("store: prune: no current time")
	}
	now := utc(o.Now)
	batch := o.BatchSize
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	res := &PruneResult{}
	var err error
	for _, t := range pruneTargets(res) {
		if o.DryRun {
			err = s.countPrunable(ctx, t, now, batch, res)
		} else {
			err = s.pruneTable(ctx, t, now, batch, res)
		}
		if err != nil {
			break
		}
	}
	if !o.DryRun && res.Batches > 0 {
		if aerr := s.auditPrune(ctx, o.Actor, now, res); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return res, err
}

// deleteBatch returns the statement deleting one batch of t's rows, and
// its arguments.
//
// On PostgreSQL the batch is chosen with FOR UPDATE SKIP LOCKED. Rows
// another transaction holds (a RegisterArtifact raising a certificate's
// retention, a Revoke) are skipped rather than waited for, and left to the
// next run; a row such a transaction changed and committed after the
// statement began is judged again, by its new version, when it is locked
// (READ COMMITTED's recheck), so a raised retention or a fresh revocation
// keeps it. The lock also keeps the planner to one shape, the batch's
// keys first and then primary key lookups, whatever its statistics say.
// On SQLite write transactions are exclusive: nothing changes under the
// statement.
func (t pruneTarget) deleteBatch(now time.Time, batch int, postgres bool) (string, []any) {
	lock := ""
	if postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	stmt := fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s LIMIT ?%[4]s)`,
		t.table, t.key, t.where, lock)
	return stmt, append(t.whereArgs(now), batch)
}

// whereArgs returns the arguments of t.where: now, once per "?".
func (t pruneTarget) whereArgs(now time.Time) []any {
	n := strings.Count(t.where, "?")
	args := make([]any, n, n+1)
	for i := range args {
		args[i] = now
	}
	return args
}

// pruneTargets returns the tables Prune deletes from, in order, counting
// into res.
func pruneTargets(res *PruneResult) []pruneTarget {
	return []pruneTarget{
		{table: "artifacts", key: "sig_sha256", where: `artifacts.expires_at < ?`, count: &res.Artifacts},
		{table: "certificates", key: "serial", where: certificatePruneWhere, count: &res.Certificates},
		{table: "challenges", key: "nonce_hash", where: `challenges.expires_at < ?`, count: &res.Challenges},
		{table: "tpm_sessions", key: "session_hash", where: `tpm_sessions.expires_at < ?`, count: &res.TPMSessions},
	}
}

// pruneTable deletes t's rows in batches until a batch deletes fewer than
// batch rows.
func (s *Store) pruneTable(ctx context.Context, t pruneTarget, now time.Time, batch int, res *PruneResult) error {
	stmt, args := t.deleteBatch(now, batch, s.driver == DriverPostgres)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: prune %s: %w", t.table, err)
		}
		r := s.db.WithContext(ctx).Exec(stmt, args...)
		if r.Error != nil {
			return fmt.Errorf("store: prune %s: %w", t.table, r.Error)
		}
		if r.RowsAffected > 0 {
			*t.count += r.RowsAffected
			res.Batches++
		}
		if r.RowsAffected < int64(batch) {
			return nil
		}
	}
}

// countPrunable counts t's rows Prune would delete, and the batches it
// would take.
func (s *Store) countPrunable(ctx context.Context, t pruneTarget, now time.Time, batch int, res *PruneResult) error {
	var n int64
	err := s.db.WithContext(ctx).Raw(fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE %s`, t.table, t.where), t.whereArgs(now)...).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("store: count prunable %s: %w", t.table, err)
	}
	*t.count = n
	res.Batches += int((n + int64(batch) - 1) / int64(batch))
	return nil
}

// auditPrune records the run's audit event, even when ctx was canceled
// after rows were deleted.
func (s *Store) auditPrune(ctx context.Context, actor string, now time.Time, res *PruneResult) error {
	if actor == "" {
		actor = "system"
	}
	detail := fmt.Sprintf(`{"certificates":%d,"artifacts":%d,"challenges":%d,"tpm_sessions":%d,"batches":%d}`,
		res.Certificates, res.Artifacts, res.Challenges, res.TPMSessions, res.Batches)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	return insertAudit(s.db.WithContext(actx), &AuditEvent{At: now, Actor: actor, Action: "ledger.pruned", Detail: detail})
}
