package store

import (
	"errors"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound reports that the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTokenUsed reports that an enrollment token was already consumed.
	ErrTokenUsed = errors.New("enrollment token already used")
	// ErrTokenExpired reports that an enrollment token expired before it
	// was used.
	ErrTokenExpired = errors.New("enrollment token expired")
	// ErrPoolFull reports that issuing would exceed a pool's cap on active
	// workers.
	ErrPoolFull = errors.New("pool has reached its maximum number of active workers")
	// ErrDuplicate reports that an insert violated a unique constraint,
	// such as an existing certificate serial or token id.
	ErrDuplicate = errors.New("duplicate")
	// ErrChallengeUnknown reports that no challenge has that nonce (never
	// issued, or pruned).
	ErrChallengeUnknown = errors.New("challenge unknown")
	// ErrChallengeUsed reports that an enrollment nonce was already
	// consumed.
	ErrChallengeUsed = errors.New("challenge already used")
	// ErrChallengeExpired reports that an enrollment nonce expired before
	// it was used.
	ErrChallengeExpired = errors.New("challenge expired")
	// ErrReplay reports that single-use attestation evidence was presented
	// again, or that an attestation subject allowed one live certificate
	// already holds one.
	ErrReplay = errors.New("attestation evidence already used")
	// ErrRevoked reports that the certificate an operation needs in good
	// standing, such as an artifact's signing certificate, is revoked.
	ErrRevoked = errors.New("certificate revoked")
	// ErrInvalidCursor reports a pagination cursor this package did not
	// produce, or one that was altered.
	ErrInvalidCursor = errors.New("invalid pagination cursor")
	// ErrSchemaTooNew reports that the database was migrated by a newer
	// version of this program than the one running.
	ErrSchemaTooNew = errors.New("database schema is newer than this program supports")
)

// SQLite extended result codes for unique violations
// (https://www.sqlite.org/rescode.html).
const (
	sqliteConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteConstraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// isUniqueViolation reports whether err is a unique or primary key
// violation on either database.
func isUniqueViolation(err error) bool {
	var sqliteErr *gosqlite.Error
	if errors.As(err, &sqliteErr) {
		c := sqliteErr.Code()
		return c == sqliteConstraintPrimaryKey || c == sqliteConstraintUnique
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	return false
}
