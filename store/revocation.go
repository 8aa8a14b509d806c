package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Revocation selects certificates to revoke and says why. Exactly one of
// Serial, WorkerID, Pool and AttestationSubject is set.
type Revocation struct {
	// Serial selects one certificate, expired or not.
	Serial string
	// WorkerID, Pool and AttestationSubject select every certificate of
	// that worker, pool or attested instance still valid at the
	// invalidity date (or at At when there is none).
	WorkerID, Pool, AttestationSubject string
	// Reason is the CRLReason code (RFC 5280 §5.3.1).
	Reason int
	// InvalidityDate is when the key is known or suspected to have been
	// compromised (RFC 5280 §5.3.2), or nil.
	InvalidityDate *time.Time
	// At is the revocation time.
	At time.Time
	// Actor names who revoked, for the audit log.
	Actor string
}

// selector returns the column and value of r's selector.
func (r Revocation) selector() (string, string, error) {
	set := 0
	var col, val string
	for _, c := range []struct{ col, val string }{
		{"serial", r.Serial}, {"worker_id", r.WorkerID}, {"pool", r.Pool}, {"attestation_subject", r.AttestationSubject},
	} {
		if c.val != "" {
			set++
			col, val = c.col, c.val
		}
	}
	if set != 1 {
		return "", "", errors.New("store: revoke: exactly one of serial, worker_id, pool and attestation_subject")
	}
	return col, val, nil
}

// RevokeResult lists what a revocation matched.
type RevokeResult struct {
	// Revoked are the rows this call revoked, as now recorded.
	Revoked []Certificate
	// AlreadyRevoked are matched rows revoked before; they are unchanged
	// (the first revocation's time and reason stand).
	AlreadyRevoked []Certificate
}

// Revoke records a revocation in one transaction, with an audit event
// "certificate.revoked" per certificate it revokes. It is idempotent: a
// certificate revoked before keeps its first revocation. A serial that is
// not in the ledger is ErrNotFound; a worker, pool or subject with no
// matching certificate is an empty result. On PostgreSQL the transaction
// also notifies the certificates it revoked to every ListenRevocations.
func (s *Store) Revoke(ctx context.Context, r Revocation) (*RevokeResult, error) {
	col, arg, err := r.selector()
	if err != nil {
		return nil, err
	}
	at := utc(r.At)
	if at.IsZero() {
		return nil, errors.New("store: revoke: no revocation time")
	}
	inv := utcPtr(r.InvalidityDate)
	// Certificates that had ended before the key went bad (or before now)
	// need no revocation, except when named by serial.
	validFrom := at
	if inv != nil {
		validFrom = *inv
	}
	var res RevokeResult
	err = s.inTx(ctx, "revoke", func(tx *gorm.DB) error {
		q := tx.Model(&Certificate{}).Where(col+" = ?", arg)
		if r.Serial == "" {
			q = q.Where("not_after > ?", validFrom)
		}
		if s.driver == DriverPostgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?, 0)`, revokeLockKey).Error; err != nil {
				return fmt.Errorf("store: lock revocations: %w", err)
			}
		}
		var before []Certificate
		if err := q.Session(&gorm.Session{}).Where("revoked_at IS NOT NULL").Find(&before).Error; err != nil {
			return fmt.Errorf("store: revoke: read: %w", err)
		}
		upd := q.Session(&gorm.Session{}).Where("revoked_at IS NULL").
			Updates(map[string]any{"revoked_at": at, "revocation_reason": r.Reason, "invalidity_date": inv})
		if upd.Error != nil {
			return fmt.Errorf("store: revoke: update: %w", upd.Error)
		}
		var after []Certificate
		if upd.RowsAffected > 0 {
			if err := q.Session(&gorm.Session{}).Where("revoked_at = ?", at).Find(&after).Error; err != nil {
				return fmt.Errorf("store: revoke: read back: %w", err)
			}
		}
		if r.Serial != "" && len(before)+len(after) == 0 {
			return fmt.Errorf("store: certificate %s: %w", r.Serial, ErrNotFound)
		}
		seen := make(map[string]bool, len(before))
		for i := range before {
			before[i].normalize()
			seen[before[i].Serial] = true
		}
		events := make([]AuditEvent, 0, len(after))
		detail := fmt.Sprintf(`{"reason":%d,"selector":%q}`, r.Reason, col)
		for i := range after {
			if seen[after[i].Serial] {
				continue // revoked before at the same instant: not ours
			}
			after[i].normalize()
			res.Revoked = append(res.Revoked, after[i])
			// at is normalized already (utc).
			events = append(events, AuditEvent{At: at, Actor: r.Actor, Action: "certificate.revoked", Target: after[i].Serial, Detail: detail})
		}
		res.AlreadyRevoked = before
		if len(events) > 0 {
			if err := tx.CreateInBatches(events, 500).Error; err != nil {
				return fmt.Errorf("store: revoke: audit: %w", err)
			}
		}
		return s.notifyRevoked(tx, res.Revoked)
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// revokeLockKey is the PostgreSQL transaction advisory lock that
// serializes revocations, so two concurrent revocations of one
// certificate cannot both claim it.
const revokeLockKey int32 = 0x776b7276 // "wkrv"

// RevokedEntry is one revoked certificate as a CRL lists it.
type RevokedEntry struct {
	Serial         string     `gorm:"column:serial"`
	RevokedAt      time.Time  `gorm:"column:revoked_at"`
	Reason         *int       `gorm:"column:revocation_reason"`
	InvalidityDate *time.Time `gorm:"column:invalidity_date"`
	NotAfter       time.Time  `gorm:"column:not_after"`
	CRLShard       *int       `gorm:"column:crl_shard"`
}

// EachRevoked calls fn for every revoked certificate of shard (and every
// revoked certificate without a recorded shard: the caller places those
// by serial) whose notAfter or revocation time is at or after from. Rows
// stream; fn must not call the store.
func (s *Store) EachRevoked(ctx context.Context, shard int, from time.Time, fn func(RevokedEntry) error) error {
	rows, err := s.db.WithContext(ctx).Model(&Certificate{}).
		Select("serial, revoked_at, revocation_reason, invalidity_date, not_after, crl_shard").
		Where("revoked_at IS NOT NULL AND (crl_shard = ? OR crl_shard IS NULL) AND (not_after >= ? OR revoked_at >= ?)", shard, utc(from), utc(from)).
		Rows()
	if err != nil {
		return fmt.Errorf("store: read revoked: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e RevokedEntry
		if err := s.db.ScanRows(rows, &e); err != nil {
			return fmt.Errorf("store: read revoked: %w", err)
		}
		e.RevokedAt = utc(e.RevokedAt)
		e.InvalidityDate = utcPtr(e.InvalidityDate)
		e.NotAfter = utc(e.NotAfter)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read revoked: %w", err)
	}
	return nil
}

// CRL is the latest CRL of one shard (table crls).
type CRL struct {
	Shard      int       `gorm:"column:shard;primaryKey"`
	Number     int64     `gorm:"column:number"`
	ThisUpdate time.Time `gorm:"column:this_update"`
	NextUpdate time.Time `gorm:"column:next_update"`
	DER        []byte    `gorm:"column:der"`
}

// TableName returns the crls table's name.
func (CRL) TableName() string { return "crls" }

// ErrStale reports that a newer row was saved first, such as a CRL with a
// higher number from another replica.
var ErrStale = errors.New("a newer version was saved first")

// SaveCRL stores c as its shard's latest CRL, unless a CRL with the same
// or a higher number is stored already (ErrStale): CRL numbers only grow,
// across restarts and replicas. On PostgreSQL a stored CRL is notified
// to every ListenRevocations.
func (s *Store) SaveCRL(ctx context.Context, c *CRL) error {
	c.ThisUpdate, c.NextUpdate = utc(c.ThisUpdate), utc(c.NextUpdate)
	upsert := `INSERT INTO crls (shard, number, this_update, next_update, der) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (shard) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
			next_update = excluded.next_update, der = excluded.der
		WHERE crls.number < excluded.number`
	args := []any{c.Shard, c.Number, c.ThisUpdate, c.NextUpdate, c.DER}
	if s.driver == DriverPostgres {
		// One statement: the notice goes out if and only if the row was
		// stored, when it commits. Its row count is the upsert's.
		notice, err := json.Marshal(RevocationNotice{CRLs: []SavedCRL{{Shard: c.Shard, Number: c.Number}}})
		if err != nil {
			return fmt.Errorf("store: save CRL: %w", err)
		}
		upsert = `WITH saved AS (` + upsert + ` RETURNING shard) SELECT pg_notify(` + revocationChannelSQL + `, ?) FROM saved`
		args = append(args, string(notice))
	}
	res := s.db.WithContext(ctx).Exec(upsert, args...)
	if res.Error != nil {
		return fmt.Errorf("store: save CRL: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: CRL %d number %d: %w", c.Shard, c.Number, ErrStale)
	}
	return nil
}

// CRLs returns every shard's latest CRL.
func (s *Store) CRLs(ctx context.Context) ([]CRL, error) {
	var out []CRL
	if err := s.db.WithContext(ctx).Order("shard").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: read CRLs: %w", err)
	}
	for i := range out {
		out[i].ThisUpdate, out[i].NextUpdate = utc(out[i].ThisUpdate), utc(out[i].NextUpdate)
	}
	return out, nil
}

// RevokedShards returns, in order, the CRL shards of the certificates
// revoked at or after since, and whether any of those was recorded
// without a shard (the caller places those by serial). A replica that may
// have missed notices (ListenRevocations) uses it to find the CRLs to
// rebuild.
func (s *Store) RevokedShards(ctx context.Context, since time.Time) (shards []int, unsharded bool, err error) {
	var rows []sql.NullInt64
	err = s.db.WithContext(ctx).Model(&Certificate{}).Distinct("crl_shard").
		Where("revoked_at IS NOT NULL AND revoked_at >= ?", utc(since)).Pluck("crl_shard", &rows).Error
	if err != nil {
		return nil, false, fmt.Errorf("store: read revoked shards: %w", err)
	}
	for _, r := range rows {
		if !r.Valid {
			unsharded = true
			continue
		}
		shards = append(shards, int(r.Int64))
	}
	slices.Sort(shards)
	return shards, unsharded, nil
}
