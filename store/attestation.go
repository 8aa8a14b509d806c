package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Challenge is an enrollment nonce handed out by POST /v1/enroll/challenge
// (table challenges). Only the hash of the nonce is stored.
type Challenge struct {
	// NonceHash is the hex SHA-256 of the nonce, never the nonce.
	NonceHash string `gorm:"column:nonce_hash;primaryKey"`
	// CreatedAt is when the nonce was handed out.
	CreatedAt time.Time `gorm:"column:created_at"`
	// ExpiresAt is when the nonce stops being accepted.
	ExpiresAt time.Time `gorm:"column:expires_at"`
	// UsedAt is when an issuance consumed the nonce, or nil.
	UsedAt *time.Time `gorm:"column:used_at"`
}

// TableName returns the challenges table's name.
func (Challenge) TableName() string { return "challenges" }

func (c *Challenge) normalize() {
	c.CreatedAt = utc(c.CreatedAt)
	c.ExpiresAt = utc(c.ExpiresAt)
	c.UsedAt = utcPtr(c.UsedAt)
}

// attestationUse is one single-use piece of evidence (table
// attestation_uses): its key can be recorded once, ever.
type attestationUse struct {
	UseKey string    `gorm:"column:use_key;primaryKey"`
	Serial string    `gorm:"column:serial"`
	UsedAt time.Time `gorm:"column:used_at"`
}

func (attestationUse) TableName() string { return "attestation_uses" }

// CreateChallenge stores a new challenge. An existing hash is ErrDuplicate.
func (s *Store) CreateChallenge(ctx context.Context, c *Challenge) error {
	if c == nil || c.NonceHash == "" {
		return errors.New("store: create challenge: nonce hash is empty")
	}
	c.normalize()
	if err := s.db.WithContext(ctx).Create(c).Error; err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("store: challenge: %w", ErrDuplicate)
		}
		return fmt.Errorf("store: insert challenge: %w", err)
	}
	return nil
}

// Challenge returns the challenge with the given nonce hash, or
// ErrNotFound.
func (s *Store) Challenge(ctx context.Context, nonceHash string) (*Challenge, error) {
	var c Challenge
	if err := s.db.WithContext(ctx).Where("nonce_hash = ?", nonceHash).Take(&c).Error; err != nil {
		return nil, notFound("challenge", err)
	}
	c.normalize()
	return &c, nil
}

// AttestationUsed reports whether the single-use key was recorded.
func (s *Store) AttestationUsed(ctx context.Context, key string) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&attestationUse{}).Where("use_key = ?", key).Count(&n).Error; err != nil {
		return false, fmt.Errorf("store: read attestation use: %w", err)
	}
	return n > 0, nil
}

// consumeChallenge marks the challenge used, or says why it cannot be:
// ErrChallengeUnknown, ErrChallengeUsed or ErrChallengeExpired. Like tokens, the
// conditional UPDATE is the single-use guarantee.
func consumeChallenge(tx *gorm.DB, hash string, now time.Time) error {
	res := tx.Exec(`UPDATE challenges SET used_at = ?
		WHERE nonce_hash = ? AND used_at IS NULL AND expires_at > ?`, now, hash, now)
	if res.Error != nil {
		return fmt.Errorf("store: consume challenge: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var c Challenge
	if err := tx.Where("nonce_hash = ?", hash).Take(&c).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("store: challenge: %w", ErrChallengeUnknown)
		}
		return fmt.Errorf("store: read challenge: %w", err)
	}
	if c.UsedAt != nil {
		return fmt.Errorf("store: challenge: %w", ErrChallengeUsed)
	}
	return fmt.Errorf("store: challenge: %w", ErrChallengeExpired)
}

// recordUses inserts the single-use keys; a key recorded before is
// ErrReplay. On PostgreSQL a concurrent insert of the same key waits for
// the first transaction and then fails with a unique violation.
func recordUses(tx *gorm.DB, keys []string, serial string, now time.Time) error {
	for _, k := range keys {
		if err := tx.Create(&attestationUse{UseKey: k, Serial: serial, UsedAt: now}).Error; err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("store: attestation %q already used: %w", k, ErrReplay)
			}
			return fmt.Errorf("store: record attestation use: %w", err)
		}
	}
	return nil
}

// subjectLockKey is the first key of the PostgreSQL transaction advisory
// lock serializing issuance per attestation subject.
const subjectLockKey int32 = 0x776b7362 // "wksb"

// checkSubjectFree refuses (ErrReplay) when the attestation subject holds
// a certificate that is neither expired nor revoked at now. On PostgreSQL
// the caller holds the subject's advisory lock (lockBatch).
func checkSubjectFree(tx *gorm.DB, subject string, now time.Time) error {
	var n int64
	err := tx.Raw(`SELECT COUNT(*) FROM certificates
		WHERE attestation_subject = ? AND not_after > ? AND revoked_at IS NULL`, subject, now).Scan(&n).Error
	if err != nil {
		return fmt.Errorf("store: count certificates of subject: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("store: attestation subject %q holds an unexpired certificate: %w", subject, ErrReplay)
	}
	return nil
}
