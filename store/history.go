package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Page sizes of WorkerCertificates.
const (
	// DefaultPageSize is the page size when WorkerQuery.Limit is zero.
	DefaultPageSize = 100
	// MaxPageSize caps WorkerQuery.Limit.
	MaxPageSize = 1000
)

// WorkerQuery selects a page of one worker's certificate history for
// WorkerCertificates.
type WorkerQuery struct {
	// WorkerID is the worker whose certificates are listed. It must not be
	// empty.
	WorkerID string
	// ValidAt, when not nil, keeps only the certificates valid at that
	// instant: NotBefore <= ValidAt <= NotAfter, both ends inclusive as in
	// X.509 (RFC 5280 §4.1.2.5).
	ValidAt *time.Time
	// Limit is the page size: zero or less means DefaultPageSize, and
	// more than MaxPageSize means MaxPageSize.
	Limit int
	// After is the cursor a previous call returned as next, to read the
	// page after it, or "" for the first page.
	After string
}

// WorkerCertificates returns a page of the ledger rows of q.WorkerID still
// retained, newest first (by NotBefore, then by serial, both descending),
// and the cursor of the next page in next, "" after the last page. A
// cursor this package did not produce is ErrInvalidCursor.
//
// Pages are keyset-paginated on (NotBefore, Serial): rows issued or
// pruned between calls neither shift nor repeat the rows of later pages.
// The query reads idx_certificates_worker_validity (worker_id, not_before,
// not_after) backwards from ValidAt or the cursor, filtering not_after in
// the index.
func (s *Store) WorkerCertificates(ctx context.Context, q WorkerQuery) (certs []Certificate, next string, err error) {
	sql, args, limit, err := workerHistorySQL(q)
	if err != nil {
		return nil, "", err
	}
	certs = []Certificate{}
	if err := s.db.WithContext(ctx).Raw(sql, args...).Scan(&certs).Error; err != nil {
		return nil, "", fmt.Errorf("store: read worker certificates: %w", err)
	}
	for i := range certs {
		certs[i].normalize()
	}
	if len(certs) > limit {
		certs = certs[:limit]
		last := certs[limit-1]
		next = encodeCursor(last.NotBefore, last.Serial)
	}
	return certs, next, nil
}

// workerHistorySQL returns WorkerCertificates' query for q, its
// arguments, and the page size; the query reads one row more than the
// page, to tell whether another page follows.
func workerHistorySQL(q WorkerQuery) (string, []any, int, error) {
	if q.WorkerID == "" {
		return "", nil, 0, errors.New("store: worker certificates: worker id is empty")
	}
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	var b strings.Builder
	b.WriteString(`SELECT * FROM certificates WHERE worker_id = ?`)
	args := []any{q.WorkerID}
	if q.ValidAt != nil {
		t := utc(*q.ValidAt)
		b.WriteString(` AND not_before <= ? AND not_after >= ?`)
		args = append(args, t, t)
	}
	if q.After != "" {
		nb, serial, err := decodeCursor(q.After)
		if err != nil {
			return "", nil, 0, err
		}
		// (not_before, serial) < (nb, serial), written so that the first
		// conjunct bounds the index scan on both databases.
		b.WriteString(` AND not_before <= ? AND (not_before < ? OR serial < ?)`)
		args = append(args, nb, nb, serial)
	}
	b.WriteString(` ORDER BY not_before DESC, serial DESC LIMIT ?`)
	args = append(args, limit+1)
	return b.String(), args, limit, nil
}

// encodeCursor returns the opaque cursor of the row (notBefore, serial):
// base64url of "<notBefore in Unix microseconds>/<serial>".
func encodeCursor(notBefore time.Time, serial string) string {
	raw := strconv.FormatInt(notBefore.UnixMicro(), 10) + "/" + serial
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reverses encodeCursor; anything else is ErrInvalidCursor.
func decodeCursor(cursor string) (time.Time, string, error) {
	invalid := fmt.Errorf("store: cursor %q: %w", cursor, ErrInvalidCursor)
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", invalid
	}
	micros, serial, ok := strings.Cut(string(raw), "/")
	if !ok || serial == "" {
		return time.Time{}, "", invalid
	}
	n, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", invalid
	}
	return time.UnixMicro(n).UTC(), serial, nil
}
