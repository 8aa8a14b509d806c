package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// poolLockKey is the first key of the PostgreSQL transaction advisory lock
// that serializes issuance within a pool; the second is hashtext(pool).
const poolLockKey int32 = 0x776b706c // "wkpl"

// Issuance is one issued certificate to record with RecordIssuance.
type Issuance struct {
	// Certificate is the ledger row to insert. Its Serial and DER must be
	// set. Its times are normalized in place (UTC, microseconds).
	Certificate *Certificate
	// TokenID, when not empty, is the enrollment token consumed by this
	// issuance.
	TokenID string
	// NonceHash, when not empty, is the hash of the enrollment challenge
	// consumed by this issuance (ErrChallengeUnknown, ErrChallengeUsed or
	// ErrChallengeExpired if it cannot be).
	NonceHash string
	// UseKeys are single-use evidence keys (e.g. "gcp-iit:token:<sha256>")
	// recorded with this issuance; one recorded before is ErrReplay.
	UseKeys []string
	// ExclusiveSubject refuses the issuance (ErrReplay) while another
	// certificate of Certificate.AttestationSubject is unexpired and
	// unrevoked: one live certificate per attested instance.
	ExclusiveSubject bool
	// MaxActiveWorkers, when positive, caps the number of distinct workers
	// holding an unexpired, unrevoked certificate in Certificate.Pool. A
	// worker that already holds one may always be issued another.
	MaxActiveWorkers int
	// Now is the current time: the token's use time and the instant at
	// which expiry and the pool cap are judged.
	Now time.Time
	// Audit is the audit event to record with the certificate; it is
	// skipped when its Action is empty. A zero At is set to Now.
	Audit AuditEvent
}

// RecordIssuance writes one issued certificate atomically: in a single
// transaction it consumes the token (ErrNotFound, ErrTokenUsed or
// ErrTokenExpired if it cannot) and the challenge, records the single-use
// evidence keys (ErrReplay), enforces the pool cap (ErrPoolFull),
// inserts the certificate (ErrDuplicate for an existing serial) and the
// audit event. On any error nothing of this issuance is written: the
// token stays unused.
//
// Concurrent calls share transactions (group commit, see batch.go): each
// returns only after the transaction holding its row has committed. One
// issuance's refusal does not affect the others in its transaction; a
// database failure fails all of them. Once its transaction has begun, a
// call no longer stops when ctx ends: it returns when that transaction
// has ended, so its error always says whether the row was written.
//
// Of concurrent callers presenting the same token exactly one succeeds.
// Concurrent issuance in one pool cannot overshoot the cap: on PostgreSQL a
// per-pool advisory lock serializes it, on SQLite the single connection
// does.
func (s *Store) RecordIssuance(ctx context.Context, r Issuance) error {
	if err := checkIssuance(&r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: record issuance: %w", err)
	}
	q := &queuedIssuance{ctx: ctx, r: &r, done: make(chan error, 1)}
	s.commits.submit(q)
	return <-q.done
}

// checkIssuance refuses an issuance that cannot be written and
// normalizes its times.
func checkIssuance(r *Issuance) error {
	c := r.Certificate
	switch {
	case c == nil:
		return errors.New("store: record issuance: no certificate")
	case c.Serial == "":
		return errors.New("store: record issuance: certificate serial is empty")
	case len(c.DER) == 0:
		return errors.New("store: record issuance: certificate DER is empty")
	case r.ExclusiveSubject && c.AttestationSubject == "":
		return errors.New("store: record issuance: exclusive subject without an attestation subject")
	case slices.Contains(r.UseKeys, ""):
		return errors.New("store: record attestation use: empty key")
	}
	c.normalize()
	r.Now = utc(r.Now)
	if r.Audit.At.IsZero() {
		r.Audit.At = r.Now
	}
	r.Audit.normalize()
	r.Audit.ID = 0
	return nil
}

// consumeToken marks the token used by serial, or says why it cannot be.
// The conditional UPDATE is the single-use guarantee: a concurrent second
// UPDATE waits for the first to commit and then matches no row.
func consumeToken(tx *gorm.DB, id, serial string, now time.Time) error {
	res := tx.Exec(`UPDATE enrollment_tokens SET used_at = ?, used_serial = ?
		WHERE id = ? AND used_at IS NULL AND expires_at > ?`, now, serial, id, now)
	if res.Error != nil {
		return fmt.Errorf("store: consume token: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var t EnrollmentToken
	if err := tx.Where("id = ?", id).Take(&t).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("store: enrollment token %q: %w", id, ErrNotFound)
		}
		return fmt.Errorf("store: read token: %w", err)
	}
	if t.UsedAt != nil {
		return fmt.Errorf("store: enrollment token %q: %w", id, ErrTokenUsed)
	}
	return fmt.Errorf("store: enrollment token %q: %w", id, ErrTokenExpired)
}

// checkPoolCap refuses (ErrPoolFull) when c's pool already has limit
// active workers other than c's. On PostgreSQL the caller holds the pool's
// advisory lock (lockBatch).
func checkPoolCap(tx *gorm.DB, c *Certificate, limit int, now time.Time) error {
	var n int64
	err := tx.Raw(`SELECT COUNT(DISTINCT worker_id) FROM certificates
		WHERE pool = ? AND not_after > ? AND revoked_at IS NULL AND worker_id <> ?`,
		c.Pool, now, c.WorkerID).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("store: count active workers: %w", err)
	}
	if n >= int64(limit) {
		return fmt.Errorf("store: pool %q has %d active workers, limit %d: %w", c.Pool, n, limit, ErrPoolFull)
	}
	return nil
}

// Certificate returns the ledger row with the given serial, or ErrNotFound.
func (s *Store) Certificate(ctx context.Context, serial string) (*Certificate, error) {
	var c Certificate
	if err := s.db.WithContext(ctx).Where("serial = ?", serial).Take(&c).Error; err != nil {
		return nil, notFound(fmt.Sprintf("certificate %s", serial), err)
	}
	c.normalize()
	return &c, nil
}

// CountActiveWorkers returns the number of distinct workers in pool that
// hold a certificate not expired at now (NotAfter after now) and not
// revoked.
func (s *Store) CountActiveWorkers(ctx context.Context, pool string, now time.Time) (int, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT COUNT(DISTINCT worker_id) FROM certificates
		WHERE pool = ? AND not_after > ? AND revoked_at IS NULL`, pool, utc(now)).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("store: count active workers: %w", err)
	}
	return int(n), nil
}

// notFound wraps err from reading what, turning gorm's not-found into
// ErrNotFound.
func notFound(what string, err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("store: read %s: %w", what, err)
}
