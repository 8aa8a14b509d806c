package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// TPMEK is an endorsement key an operator registered (table tpm_eks):
// `workerca tpm register --ek-sha256 H --pool P [--worker-id W]`. It
// admits a TPM without an EK certificate, and names the worker of one
// with a certificate.
type TPMEK struct {
	// EKSHA256 is the lowercase hex SHA-256 of the EK public key's PKIX
	// DER.
	EKSHA256 string `gorm:"column:ek_sha256;primaryKey"`
	// Pool is the only pool the EK may enroll into.
	Pool string `gorm:"column:pool"`
	// WorkerID is the worker's name; "" means derived from the EK hash.
	WorkerID string `gorm:"column:worker_id"`
	// CreatedBy names the operator (API key) who registered it.
	CreatedBy string `gorm:"column:created_by"`
	// CreatedAt is when it was registered.
	CreatedAt time.Time `gorm:"column:created_at"`
}

// TableName returns the tpm_eks table's name.
func (TPMEK) TableName() string { return "tpm_eks" }

// TPMSession is the state of a TPM enrollment between its two rounds
// (table tpm_sessions). Its single use and expiry are the challenge row
// with the same hash, consumed by the issuance that finishes it.
type TPMSession struct {
	// SessionHash is the hex SHA-256 of the session handle.
	SessionHash string `gorm:"column:session_hash;primaryKey"`
	// SecretHash is the hex SHA-256 of the credential's secret.
	SecretHash string `gorm:"column:secret_hash"`
	// Pool and WorkerID are the identity the first round established.
	Pool     string `gorm:"column:pool"`
	WorkerID string `gorm:"column:worker_id"`
	// EKSHA256 and AKName identify the TPM and its attestation key.
	EKSHA256 string `gorm:"column:ek_sha256"`
	AKName   string `gorm:"column:ak_name"`
	// Evidence is the ledger's evidence summary (JSON).
	Evidence string `gorm:"column:evidence"`
	// CSR is the worker's request, DER.
	CSR []byte `gorm:"column:csr"`
	// CreatedAt and ExpiresAt bound the session.
	CreatedAt time.Time `gorm:"column:created_at"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
	// UsedAt is the challenge's used_at: when the session was finished or
	// burned. Read only.
	UsedAt *time.Time `gorm:"-"`
}

// TableName returns the tpm_sessions table's name.
func (TPMSession) TableName() string { return "tpm_sessions" }

// RegisterTPMEK stores an EK registration with its audit event. An EK
// registered before is ErrDuplicate: unregister it first.
func (s *Store) RegisterTPMEK(ctx context.Context, ek *TPMEK, audit AuditEvent) error {
	if ek == nil || ek.EKSHA256 == "" || ek.Pool == "" {
		return errors.New("store: register TPM EK: hash and pool are required")
	}
	ek.CreatedAt = utc(ek.CreatedAt)
	if audit.At.IsZero() {
		audit.At = ek.CreatedAt
	}
	return s.inTx(ctx, "register TPM EK", func(tx *gorm.DB) error {
		if err := tx.Create(ek).Error; err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("store: TPM EK %s: %w", ek.EKSHA256, ErrDuplicate)
			}
			return fmt.Errorf("store: insert TPM EK: %w", err)
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
}

// UnregisterTPMEK deletes an EK registration with its audit event, or
// answers ErrNotFound. Certificates already issued stay valid: revoke
// them by attestation subject.
func (s *Store) UnregisterTPMEK(ctx context.Context, hash string, audit AuditEvent) error {
	return s.inTx(ctx, "unregister TPM EK", func(tx *gorm.DB) error {
		res := tx.Where("ek_sha256 = ?", hash).Delete(&TPMEK{})
		if res.Error != nil {
			return fmt.Errorf("store: delete TPM EK: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("store: TPM EK %s: %w", hash, ErrNotFound)
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
}

// TPMEK returns the registration of the EK with that hash, or
// ErrNotFound.
func (s *Store) TPMEK(ctx context.Context, hash string) (*TPMEK, error) {
	var ek TPMEK
	if err := s.db.WithContext(ctx).Where("ek_sha256 = ?", hash).Take(&ek).Error; err != nil {
		return nil, notFound("TPM EK "+hash, err)
	}
	ek.CreatedAt = utc(ek.CreatedAt)
	return &ek, nil
}

// TPMEKs lists registrations, optionally of one pool, by hash.
func (s *Store) TPMEKs(ctx context.Context, pool string) ([]TPMEK, error) {
	q := s.db.WithContext(ctx).Order("ek_sha256")
	if pool != "" {
		q = q.Where("pool = ?", pool)
	}
	var out []TPMEK
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list TPM EKs: %w", err)
	}
	for i := range out {
		out[i].CreatedAt = utc(out[i].CreatedAt)
	}
	return out, nil
}

// CreateTPMSession stores a session and its challenge row (same hash,
// same expiry) in one transaction.
func (s *Store) CreateTPMSession(ctx context.Context, sess *TPMSession) error {
	if sess == nil || sess.SessionHash == "" || sess.SecretHash == "" {
		return errors.New("store: create TPM session: session and secret hashes are required")
	}
	sess.CreatedAt, sess.ExpiresAt = utc(sess.CreatedAt), utc(sess.ExpiresAt)
	return s.inTx(ctx, "create TPM session", func(tx *gorm.DB) error {
		ch := &Challenge{NonceHash: sess.SessionHash, CreatedAt: sess.CreatedAt, ExpiresAt: sess.ExpiresAt}
		if err := tx.Create(ch).Error; err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("store: TPM session: %w", ErrDuplicate)
			}
			return fmt.Errorf("store: insert TPM session challenge: %w", err)
		}
		if err := tx.Create(sess).Error; err != nil {
			return fmt.Errorf("store: insert TPM session: %w", err)
		}
		return nil
	})
}

// TPMSession returns the session with that hash, its UsedAt read from its
// challenge, or ErrNotFound.
func (s *Store) TPMSession(ctx context.Context, hash string) (*TPMSession, error) {
	var sess TPMSession
	if err := s.db.WithContext(ctx).Where("session_hash = ?", hash).Take(&sess).Error; err != nil {
		return nil, notFound("TPM session", err)
	}
	var ch Challenge
	if err := s.db.WithContext(ctx).Where("nonce_hash = ?", hash).Take(&ch).Error; err != nil {
		return nil, notFound("TPM session challenge", err)
	}
	sess.CreatedAt, sess.ExpiresAt = utc(sess.CreatedAt), utc(sess.ExpiresAt)
	sess.UsedAt = utcPtr(ch.UsedAt)
	return &sess, nil
}

// BurnChallenge marks an unused challenge used without an issuance (a TPM
// session finished with a wrong secret). It answers whether it did; a
// challenge already used or unknown is not an error.
func (s *Store) BurnChallenge(ctx context.Context, hash string, now time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE challenges SET used_at = ? WHERE nonce_hash = ? AND used_at IS NULL`, utc(now), hash)
	if res.Error != nil {
		return false, fmt.Errorf("store: burn challenge: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}
