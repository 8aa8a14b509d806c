package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// AddAudit appends e to the audit log. Its ID is assigned by the database.
func (s *Store) AddAudit(ctx context.Context, e AuditEvent) error {
	return insertAudit(s.db.WithContext(ctx), &e)
}

// AuditEvents returns up to limit audit events, newest first (by At, then
// by ID). A limit of zero or less returns them all.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]AuditEvent, error) {
	q := s.db.WithContext(ctx).Order("at DESC, id DESC")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var events []AuditEvent
	if err := q.Find(&events).Error; err != nil {
		return nil, fmt.Errorf("store: list audit events: %w", err)
	}
	for i := range events {
		events[i].normalize()
	}
	return events, nil
}

func insertAudit(tx *gorm.DB, e *AuditEvent) error {
	e.normalize()
	e.ID = 0
	if err := tx.Create(e).Error; err != nil {
		return fmt.Errorf("store: insert audit event: %w", err)
	}
	return nil
}
