package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// CreateAPIKey inserts an API key and, when audit.Action is not empty, its
// audit event, in one transaction. An existing id is ErrDuplicate. The
// key's times are normalized in place; a zero audit.At is set to
// k.CreatedAt.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey, audit AuditEvent) error {
	if k == nil || k.ID == "" {
		return errors.New("store: create api key: key id is empty")
	}
	k.normalize()
	if audit.At.IsZero() {
		audit.At = k.CreatedAt
	}
	return s.inTx(ctx, "create api key", func(tx *gorm.DB) error {
		if err := tx.Create(k).Error; err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("store: api key %q: %w", k.ID, ErrDuplicate)
			}
			return fmt.Errorf("store: insert api key: %w", err)
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
}

// APIKey returns the API key with the given id, or ErrNotFound.
func (s *Store) APIKey(ctx context.Context, id string) (*APIKey, error) {
	var k APIKey
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&k).Error; err != nil {
		return nil, notFound(fmt.Sprintf("api key %q", id), err)
	}
	k.normalize()
	return &k, nil
}

// ListAPIKeys returns all API keys, revoked and expired ones included,
// ordered by creation time and then id.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	if err := s.db.WithContext(ctx).Order("created_at, id").Find(&keys).Error; err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	for i := range keys {
		keys[i].normalize()
	}
	return keys, nil
}

// RevokeAPIKey marks the key revoked at the given time and, when
// audit.Action is not empty, records audit, in one transaction. It returns
// ErrNotFound for an unknown id. Revoking a revoked key is a no-op that
// succeeds, keeps the first revocation time and records no audit event.
// A zero audit.At is set to at.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time, audit AuditEvent) error {
	at = utc(at)
	if audit.At.IsZero() {
		audit.At = at
	}
	return s.inTx(ctx, "revoke api key", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at, id)
		if res.Error != nil {
			return fmt.Errorf("store: revoke api key: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&APIKey{}).Where("id = ?", id).Count(&n).Error; err != nil {
				return fmt.Errorf("store: revoke api key: %w", err)
			}
			if n == 0 {
				return fmt.Errorf("store: api key %q: %w", id, ErrNotFound)
			}
			return nil // already revoked
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
}

// TouchAPIKey sets the key's last use time, or returns ErrNotFound.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`, utc(at), id)
	if res.Error != nil {
		return fmt.Errorf("store: touch api key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: api key %q: %w", id, ErrNotFound)
	}
	return nil
}

// CountAPIKeys returns the number of API keys, revoked and expired ones
// included.
func (s *Store) CountAPIKeys(ctx context.Context) (int, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&APIKey{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count api keys: %w", err)
	}
	return int(n), nil
}
