package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Artifact is one registration of an artifact signature (table
// artifacts): a worker's detached JWS over an artifact's digest, and the
// receipt the authority answered with.
type Artifact struct {
	// SigSHA256 is the lowercase hex SHA-256 of Signature, the compact JWS
	// as registered. It is the registration's key: registering the same
	// signature again returns this row.
	SigSHA256 string `gorm:"column:sig_sha256;primaryKey"`
	// SHA256 is the lowercase hex SHA-256 of the artifact: what was signed.
	SHA256 string `gorm:"column:sha256"`
	// Name is the artifact's name as the worker gave it, or "".
	Name string `gorm:"column:name"`
	// Serial is the serial of the certificate that signed, in the ledger's
	// form (lowercase hex of the serial number's bytes).
	Serial string `gorm:"column:serial"`
	// WorkerID is the signing certificate's worker.
	WorkerID string `gorm:"column:worker_id"`
	// Pool is the signing certificate's pool.
	Pool string `gorm:"column:pool"`
	// SPIFFEID is the signing certificate's SPIFFE ID.
	SPIFFEID string `gorm:"column:spiffe_id"`
	// Signature is the detached compact JWS the worker registered.
	Signature string `gorm:"column:signature"`
	// Receipt is the authority's compact JWS receipt for the
	// registration, with the time it was registered.
	Receipt string `gorm:"column:receipt"`
	// RegisteredAt is when the authority registered the signature: the
	// time in Receipt.
	RegisteredAt time.Time `gorm:"column:registered_at"`
	// ExpiresAt is when the registration may be pruned. Registering raises
	// the signing certificate's RetainUntil to it.
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

// TableName returns the artifacts table's name.
func (Artifact) TableName() string { return "artifacts" }

func (a *Artifact) normalize() {
	a.RegisteredAt = utc(a.RegisteredAt)
	a.ExpiresAt = utc(a.ExpiresAt)
}

// check says what required field of a is missing.
func (a *Artifact) check() error {
	switch {
	case a == nil:
		return errors.New("store: register artifact: no artifact")
	case a.SigSHA256 == "":
		return errors.New("store: register artifact: signature hash is empty")
	case a.SHA256 == "":
		return errors.New("store: register artifact: artifact digest is empty")
	case a.Serial == "":
		return errors.New("store: register artifact: certificate serial is empty")
	case a.Signature == "":
		return errors.New("store: register artifact: signature is empty")
	case a.Receipt == "":
		return errors.New("store: register artifact: receipt is empty")
	case a.RegisteredAt.IsZero():
		return errors.New("store: register artifact: no registration time")
	case a.ExpiresAt.IsZero():
		return errors.New("store: register artifact: no expiry")
	}
	return nil
}

// RegisterArtifact records an artifact signature and, when audit.Action
// is not empty, its audit event, in one transaction, and reports whether
// it created the row.
//
// It is idempotent on a.SigSHA256: when that signature is registered
// already, *a is overwritten with the stored row (whose Receipt the caller
// answers with again), created is false and nothing is written. The
// stored row having another digest or serial is ErrDuplicate. Of
// concurrent registrations of one signature exactly one creates the row;
// the others return it.
//
// A new registration needs its signing certificate in the ledger
// (ErrNotFound) and not revoked (ErrRevoked). It raises the certificate's
// RetainUntil to a.ExpiresAt when that is later, so the certificate stays
// in the history as long as a registration relies on it.
//
// Registrations and revocations of one certificate serialize on its
// ledger row: a registration locks the row (on PostgreSQL with SELECT ...
// FOR NO KEY UPDATE, which conflicts with Revoke's UPDATE; on SQLite every
// write transaction is exclusive) before reading its revocation state and
// holds the lock until it commits. So a registration either commits before
// the revocation does or sees the revocation and fails with ErrRevoked;
// none commits after a revocation it did not see. Prune skips a row so locked, and judges it
// by its raised RetainUntil on its next run.
//
// a's times are normalized in place; a zero audit.At is set to
// a.RegisteredAt.
func (s *Store) RegisterArtifact(ctx context.Context, a *Artifact, audit AuditEvent) (created bool, err error) {
	if err := a.check(); err != nil {
		return false, err
	}
	a.normalize()
	if audit.At.IsZero() {
		audit.At = a.RegisteredAt
	}
	err = s.inTx(ctx, "register artifact", func(tx *gorm.DB) error {
		created = false
		found, err := storedArtifact(tx, a)
		if err != nil || found {
			return err
		}
		if err := s.lockGoodCertificate(tx, a.Serial); err != nil {
			return err
		}
		ins := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(a)
		if ins.Error != nil {
			return fmt.Errorf("store: insert artifact: %w", ins.Error)
		}
		if ins.RowsAffected == 0 {
			// A concurrent registration of the same signature committed
			// between the read above and the insert: return its row.
			if found, err := storedArtifact(tx, a); err != nil || found {
				return err
			}
			return fmt.Errorf("store: artifact signature %s: conflicting insert not found", a.SigSHA256)
		}
		created = true
		err = tx.Exec(`UPDATE certificates SET retain_until = ? WHERE serial = ? AND retain_until < ?`,
			a.ExpiresAt, a.Serial, a.ExpiresAt).Error
		if err != nil {
			return fmt.Errorf("store: extend certificate retention: %w", err)
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// storedArtifact loads the registration of a.SigSHA256 into *a and
// reports whether there is one; one of another digest or certificate is
// ErrDuplicate.
func storedArtifact(tx *gorm.DB, a *Artifact) (bool, error) {
	var got Artifact
	if err := tx.Where("sig_sha256 = ?", a.SigSHA256).Take(&got).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("store: read artifact: %w", err)
	}
	if got.SHA256 != a.SHA256 || got.Serial != a.Serial {
		return false, fmt.Errorf("store: artifact signature %s registered for digest %s by %s: %w",
			a.SigSHA256, got.SHA256, got.Serial, ErrDuplicate)
	}
	got.normalize()
	*a = got
	return true, nil
}

// lockGoodCertificate locks the ledger row of serial until the
// transaction ends and checks that it exists (ErrNotFound) and is not
// revoked (ErrRevoked). On PostgreSQL the lock is FOR NO KEY UPDATE, the
// lock an UPDATE takes, so a concurrent revocation of the row waits for
// the transaction or is waited for and then seen; on SQLite the write
// transaction holds the database's only write lock.
func (s *Store) lockGoodCertificate(tx *gorm.DB, serial string) error {
	q := `SELECT serial, revoked_at FROM certificates WHERE serial = ?`
	if s.driver == DriverPostgres {
		q += ` FOR NO KEY UPDATE`
	}
	var rows []struct {
		Serial    string     `gorm:"column:serial"`
		RevokedAt *time.Time `gorm:"column:revoked_at"`
	}
	if err := tx.Raw(q, serial).Scan(&rows).Error; err != nil {
		return fmt.Errorf("store: lock certificate: %w", err)
	}
	switch {
	case len(rows) == 0:
		return fmt.Errorf("store: certificate %s: %w", serial, ErrNotFound)
	case rows[0].RevokedAt != nil:
		return fmt.Errorf("store: certificate %s: %w", serial, ErrRevoked)
	}
	return nil
}

// Artifacts returns the registrations of the artifact digest sha256,
// oldest first; none is an empty slice, not an error.
func (s *Store) Artifacts(ctx context.Context, sha256 string) ([]Artifact, error) {
	out := []Artifact{}
	err := s.db.WithContext(ctx).Where("sha256 = ?", sha256).
		Order("registered_at, sig_sha256").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("store: read artifacts: %w", err)
	}
	for i := range out {
		out[i].normalize()
	}
	return out, nil
}
