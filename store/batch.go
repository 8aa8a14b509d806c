package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Group commit. Concurrent RecordIssuance calls are queued and written by
// a few committer goroutines, each taking whatever is queued (at most
// Config.MaxBatch issuances) into one transaction, so that many issuances
// share one commit (one WAL flush). A committer starts as soon as an
// issuance is queued and no more than Config.MaxBatches are running: an
// idle store writes a lone issuance at once, without waiting for company.
// Every caller returns only after the transaction holding its row has
// committed, or with an error.

// Defaults of Config.MaxBatch and Config.MaxBatches.
const (
	// DefaultMaxBatch is the most issuances one transaction holds.
	DefaultMaxBatch = 64
	// DefaultMaxBatchesPostgres is how many batch transactions run at
	// once on PostgreSQL: while one waits for its commit, the next is
	// being written. SQLite has one connection, so one batch at a time.
	DefaultMaxBatchesPostgres = 4
)

// pgDeadlockDetected is PostgreSQL's SQLSTATE deadlock_detected.
const pgDeadlockDetected = "40P01"

// errRetryOneByOne says a batch written in bulk hit a constraint that
// cannot be pinned on one issuance (a unique violation in the multi-row
// INSERT): the batch is rolled back and written again, one savepoint per
// issuance.
var errRetryOneByOne = errors.New("store: batch needs one savepoint per issuance")

// queuedIssuance is one RecordIssuance call waiting for its batch.
type queuedIssuance struct {
	ctx  context.Context
	r    *Issuance
	done chan error // buffered: the committer never blocks on it
}

// batcher queues items and hands them to run in batches of at most
// maxBatch, from at most maxRunning goroutines at once. A goroutine starts
// when an item is queued and fewer than maxRunning run; it takes whatever
// is queued, and ends when the queue is empty.
type batcher[T any] struct {
	maxBatch   int
	maxRunning int
	run        func(batch []T)

	mu      sync.Mutex
	queue   []T
	running int
}

// submit queues item and starts a goroutine if fewer than maxRunning run.
func (b *batcher[T]) submit(item T) {
	b.mu.Lock()
	b.queue = append(b.queue, item)
	start := b.running < b.maxRunning
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.loop()
	}
}

// loop runs batches until the queue is empty.
func (b *batcher[T]) loop() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.maxBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := slices.Clone(b.queue[:n])
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		b.run(batch)
	}
}

// commitIssuances writes one batch and hands every caller its own result.
// A caller whose context ended while queued is not written.
func (s *Store) commitIssuances(batch []*queuedIssuance) {
	live := batch[:0]
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.done <- fmt.Errorf("store: record issuance: %w", err)
			continue
		}
		live = append(live, q)
	}
	if len(live) == 0 {
		return
	}
	rs := make([]*Issuance, len(live))
	for i, q := range live {
		rs[i] = q.r
	}
	// The transaction is shared: one caller giving up must not roll back
	// the others' rows, so it runs without the callers' cancellation.
	errs := s.recordBatch(context.WithoutCancel(live[0].ctx), rs)
	for i, q := range live {
		q.done <- errs[i]
	}
}

// recordBatch writes rs in one transaction and returns each issuance's
// result: nil when committed, its own refusal (ErrTokenUsed, ErrPoolFull,
// ...) when refused, with nothing of it written, or, for every issuance,
// the error that prevented the commit. rs must have been checked by
// checkIssuance.
func (s *Store) recordBatch(ctx context.Context, rs []*Issuance) []error {
	errs, err := s.writeBatch(ctx, rs, false)
	if errors.Is(err, errRetryOneByOne) || isDeadlock(err) {
		errs, err = s.writeBatch(ctx, rs, true)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// writeBatch runs one transaction for rs. Issuances that can be refused
// after a write of their own (a token and a challenge, evidence keys, a
// pool cap or an exclusive subject checked after the token) get a
// savepoint, so a refusal undoes only that issuance; the others need
// none, since their only fallible write is one conditional UPDATE that
// writes nothing when it refuses. Certificates and audit events are then
// inserted with one multi-row INSERT each. With oneByOne every issuance
// gets a savepoint and its own INSERTs, which pins a duplicate serial on
// its issuance.
func (s *Store) writeBatch(ctx context.Context, rs []*Issuance, oneByOne bool) ([]error, error) {
	errs := make([]error, len(rs))
	// Row locks (tokens, challenges) and advisory locks are taken in one
	// order by every batch, so two batches cannot deadlock on them.
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(rs[a].TokenID, rs[b].TokenID), cmp.Compare(rs[a].NonceHash, rs[b].NonceHash))
	})

	err := s.inTx(ctx, "record issuance", func(tx *gorm.DB) error {
		if err := s.lockBatch(tx, rs); err != nil {
			return err
		}
		var consumed map[int]bool
		if !oneByOne {
			var err error
			if consumed, err = s.consumeTokens(tx, rs); err != nil {
				return err
			}
		}
		var certs []*Certificate
		var audits []*AuditEvent
		flush := func() error {
			if len(certs) > 0 {
				if err := tx.Create(certs).Error; err != nil {
					if isUniqueViolation(err) {
						return errRetryOneByOne
					}
					return fmt.Errorf("store: insert certificates: %w", err)
				}
			}
			if len(audits) > 0 {
				if err := tx.Create(audits).Error; err != nil {
					return fmt.Errorf("store: insert audit events: %w", err)
				}
			}
			certs, audits = certs[:0], audits[:0]
			return nil
		}
		for _, i := range order {
			r := rs[i]
			reads := r.ExclusiveSubject || r.MaxActiveWorkers > 0
			if reads {
				// The checks count certificates: batch-mates first.
				if err := flush(); err != nil {
					return err
				}
			}
			sp := oneByOne || needsSavepoint(r)
			if sp {
				if err := tx.Exec("SAVEPOINT issuance").Error; err != nil {
					return fmt.Errorf("store: savepoint: %w", err)
				}
			}
			err := s.recordOne(tx, r, consumed[i], oneByOne)
			if err != nil && !isRefusal(err) {
				return err
			}
			if sp {
				if err != nil {
					if rerr := tx.Exec("ROLLBACK TO SAVEPOINT issuance").Error; rerr != nil {
						return fmt.Errorf("store: rollback to savepoint: %w", rerr)
					}
				}
				if rerr := tx.Exec("RELEASE SAVEPOINT issuance").Error; rerr != nil {
					return fmt.Errorf("store: release savepoint: %w", rerr)
				}
			}
			if err != nil {
				errs[i] = err
				continue
			}
			if !oneByOne {
				certs = append(certs, r.Certificate)
				if r.Audit.Action != "" {
					audits = append(audits, &r.Audit)
				}
			}
		}
		return flush()
	})
	return errs, err
}

// lockBatch takes, on PostgreSQL, the advisory locks of every capped pool
// and every exclusive subject of the batch, in sorted order.
func (s *Store) lockBatch(tx *gorm.DB, rs []*Issuance) error {
	if s.driver != DriverPostgres {
		return nil
	}
	var pools, subjects []string
	for _, r := range rs {
		if r.MaxActiveWorkers > 0 {
			pools = append(pools, r.Certificate.Pool)
		}
		if r.ExclusiveSubject {
			subjects = append(subjects, r.Certificate.AttestationSubject)
		}
	}
	slices.Sort(pools)
	slices.Sort(subjects)
	for _, p := range slices.Compact(pools) {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?, hashtext(?))`, poolLockKey, p).Error; err != nil {
			return fmt.Errorf("store: lock pool: %w", err)
		}
	}
	for _, sub := range slices.Compact(subjects) {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?, hashtext(?))`, subjectLockKey, sub).Error; err != nil {
			return fmt.Errorf("store: lock attestation subject: %w", err)
		}
	}
	return nil
}

// recordOne consumes what r consumes (its token unless tokenConsumed)
// and checks what r must satisfy, in the order a lone issuance always had
// (so a used token is reported as used even in a full pool). With insert
// it also inserts the certificate and the audit event.
func (s *Store) recordOne(tx *gorm.DB, r *Issuance, tokenConsumed, insert bool) error {
	c := r.Certificate
	now := r.Now
	if r.TokenID != "" && !tokenConsumed {
		if err := consumeToken(tx, r.TokenID, c.Serial, now); err != nil {
			return err
		}
	}
	if r.NonceHash != "" {
		if err := consumeChallenge(tx, r.NonceHash, now); err != nil {
			return err
		}
	}
	if err := recordUses(tx, r.UseKeys, c.Serial, now); err != nil {
		return err
	}
	if r.ExclusiveSubject {
		if err := checkSubjectFree(tx, c.AttestationSubject, now); err != nil {
			return err
		}
	}
	if r.MaxActiveWorkers > 0 {
		if err := checkPoolCap(tx, c, r.MaxActiveWorkers, now); err != nil {
			return err
		}
	}
	if !insert {
		return nil
	}
	if err := tx.Create(c).Error; err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("store: certificate %s: %w", c.Serial, ErrDuplicate)
		}
		return fmt.Errorf("store: insert certificate: %w", err)
	}
	if r.Audit.Action != "" {
		return insertAudit(tx, &r.Audit)
	}
	return nil
}

// maxBulkTokens bounds the tokens one UPDATE consumes (3 parameters
// each, far below SQLite's and PostgreSQL's limits).
const maxBulkTokens = 256

// consumeTokens consumes, with one UPDATE, the tokens of the issuances
// whose only consumption is their token and that have nothing to check
// (so nothing can refuse them afterwards but a duplicate serial, which
// rolls the whole batch back), and returns the indexes of rs whose token
// it consumed. A token it did not consume (unknown, used, expired, or a
// second use in the batch) is left to recordOne, which says why.
func (s *Store) consumeTokens(tx *gorm.DB, rs []*Issuance) (map[int]bool, error) {
	byID := map[string]int{}
	var ids []string
	for i, r := range rs {
		if r.TokenID == "" || needsSavepoint(r) || r.NonceHash != "" || r.ExclusiveSubject || r.MaxActiveWorkers > 0 {
			continue
		}
		if _, dup := byID[r.TokenID]; dup || len(ids) == maxBulkTokens {
			continue
		}
		byID[r.TokenID] = i
		ids = append(ids, r.TokenID)
	}
	if len(ids) < 2 {
		return nil, nil
	}
	slices.Sort(ids) // one lock order for every batch
	ts := "?"
	if s.driver == DriverPostgres {
		ts = "CAST(? AS timestamptz)"
	}
	var sb strings.Builder
	args := make([]any, 0, 3*len(ids))
	sb.WriteString(`UPDATE enrollment_tokens SET used_at = v.used_at, used_serial = v.serial FROM (`)
	for k, id := range ids {
		if k > 0 {
			sb.WriteString(" UNION ALL ")
		}
		sb.WriteString("SELECT ? AS id, ? AS serial, " + ts + " AS used_at")
		r := rs[byID[id]]
		args = append(args, id, r.Certificate.Serial, r.Now)
	}
	sb.WriteString(`) AS v WHERE enrollment_tokens.id = v.id AND enrollment_tokens.used_at IS NULL
		AND enrollment_tokens.expires_at > v.used_at RETURNING enrollment_tokens.id`)
	var done []string
	if err := tx.Raw(sb.String(), args...).Scan(&done).Error; err != nil {
		return nil, fmt.Errorf("store: consume tokens: %w", err)
	}
	consumed := make(map[int]bool, len(done))
	for _, id := range done {
		i, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("store: consume tokens: unexpected token %q returned", id)
		}
		consumed[i] = true
	}
	return consumed, nil
}

// needsSavepoint reports whether r can be refused after writing: more
// than one consumption, evidence keys (a unique violation also aborts a
// PostgreSQL transaction), or a check that comes after a consumption.
func needsSavepoint(r *Issuance) bool {
	consumes := 0
	if r.TokenID != "" {
		consumes++
	}
	if r.NonceHash != "" {
		consumes++
	}
	checks := r.ExclusiveSubject || r.MaxActiveWorkers > 0
	return len(r.UseKeys) > 0 || consumes > 1 || (consumes > 0 && checks)
}

// isRefusal reports whether err refuses one issuance (its token, its
// challenge, its evidence, its pool or its serial) rather than the batch.
func isRefusal(err error) bool {
	for _, e := range []error{ErrNotFound, ErrTokenUsed, ErrTokenExpired, ErrChallengeUnknown,
		ErrChallengeUsed, ErrChallengeExpired, ErrReplay, ErrPoolFull, ErrDuplicate} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isDeadlock reports whether PostgreSQL broke a deadlock by failing err's
// transaction; the batch is then written again once, one by one.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgDeadlockDetected
}
