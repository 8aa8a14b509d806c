package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// Concurrent calls share one SELECT (see batch.go).
func (s *Store) Token(ctx context.Context, id string) (*EnrollmentToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: read enrollment token %q: %w", id, err)
	}
	q := &tokenLookup{ctx: ctx, id: id, done: make(chan tokenResult, 1)}
	s.tokenReads.submit(q)
	select {
	case r := <-q.done:
		return r.t, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("store: read enrollment token %q: %w", id, ctx.Err())
	}
}

// maxTokenReadBatch bounds the ids of one batched token SELECT.
const maxTokenReadBatch = 64

// tokenLookup is one Token call waiting for its batch.
type tokenLookup struct {
	ctx  context.Context
	id   string
	done chan tokenResult // buffered: the reader never blocks on it
}

type tokenResult struct {
	t   *EnrollmentToken
	err error
}

// readTokens reads the tokens of one batch of Token calls with one SELECT
// and answers each call with its own copy of its row.
func (s *Store) readTokens(batch []*tokenLookup) {
	live := batch[:0]
	for _, q := range batch {
		if q.ctx.Err() == nil {
			live = append(live, q) // the others have returned already
		}
	}
	if len(live) == 0 {
		return
	}
	ids := make([]string, 0, len(live))
	for _, q := range live {
		ids = append(ids, q.id)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var rows []EnrollmentToken
	err := s.db.WithContext(context.WithoutCancel(live[0].ctx)).Where("id IN ?", ids).Find(&rows).Error
	byID := make(map[string]*EnrollmentToken, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	for _, q := range live {
		switch t, ok := byID[q.id]; {
		case err != nil:
			q.done <- tokenResult{err: fmt.Errorf("store: read enrollment token %q: %w", q.id, err)}
		case !ok:
			q.done <- tokenResult{err: fmt.Errorf("store: enrollment token %q: %w", q.id, ErrNotFound)}
		default:
			c := *t
			c.normalize()
			q.done <- tokenResult{t: &c}
		}
	}
}
