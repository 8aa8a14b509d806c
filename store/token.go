package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// CreateToken inserts an enrollment token and, when audit.Action is not
// empty, its audit event, in one transaction. An existing id is
// ErrDuplicate. The token's times are normalized in place; a zero audit.At
// is set to t.CreatedAt.
func (s *Store) CreateToken(ctx context.Context, t *EnrollmentToken, audit AuditEvent) error {
	if t == nil || t.ID == "" {
		return errors.New("store: create token: token id is empty")
	}
	t.normalize()
	if audit.At.IsZero() {
		audit.At = t.CreatedAt
	}
	return s.inTx(ctx, "create token", func(tx *gorm.DB) error {
		if err := tx.Create(t).Error; err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("store: enrollment token %q: %w", t.ID, ErrDuplicate)
			}
			return fmt.Errorf("store: insert token: %w", err)
		}
		if audit.Action != "" {
			return insertAudit(tx, &audit)
		}
		return nil
	})
}

// Token returns the enrollment token with the given id, or ErrNotFound.
func (s *Store) Token(ctx context.Context, id string) (*EnrollmentToken, error) {
	var t EnrollmentToken
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&t).Error; err != nil {
		return nil, notFound(fmt.Sprintf("enrollment token %q", id), err)
	}
	t.normalize()
	return &t, nil
}
