package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// migration is one step of the schema, applied in one transaction. Its SQL
// is hand-written per dialect; applied migrations are never edited, only
// followed by new ones.
type migration struct {
	version  int
	sqlite   []string
	postgres []string
}

// migrateLockKey is the first key of the PostgreSQL advisory lock held
// while migrating; the second is a hash of the current schema, so
// databases sharing a server but not a schema do not wait for each other.
const migrateLockKey int32 = 0x776b6d67 // "wkmg"

// migrations returns the schema's migrations in version order.
func migrations() []migration {
	return []migration{
		{
			version: 1,
			sqlite: []string{
				`CREATE TABLE certificates (
					serial              TEXT     NOT NULL PRIMARY KEY,
					worker_id           TEXT     NOT NULL,
					pool                TEXT     NOT NULL,
					spiffe_id           TEXT     NOT NULL DEFAULT '',
					spki_sha256         TEXT     NOT NULL DEFAULT '',
					not_before          DATETIME NOT NULL,
					not_after           DATETIME NOT NULL,
					method              TEXT     NOT NULL DEFAULT '',
					enrollment_id       TEXT     NOT NULL DEFAULT '',
					attestation_subject TEXT     NOT NULL DEFAULT '',
					evidence            TEXT     NOT NULL DEFAULT '',
					parent_serial       TEXT     NOT NULL DEFAULT '',
					der                 BLOB     NOT NULL,
					issued_at           DATETIME NOT NULL,
					revoked_at          DATETIME,
					revocation_reason   INTEGER,
					invalidity_date     DATETIME,
					retain_until        DATETIME NOT NULL
				)`,
				`CREATE INDEX idx_certificates_worker_validity ON certificates (worker_id, not_before, not_after)`,
				`CREATE INDEX idx_certificates_not_after ON certificates (not_after)`,
				`CREATE INDEX idx_certificates_pool_not_after ON certificates (pool, not_after)`,
				`CREATE INDEX idx_certificates_attestation_subject ON certificates (attestation_subject)`,
				`CREATE TABLE enrollment_tokens (
					id          TEXT     NOT NULL PRIMARY KEY,
					secret_hash TEXT     NOT NULL,
					pool        TEXT     NOT NULL,
					worker_id   TEXT     NOT NULL DEFAULT '',
					created_by  TEXT     NOT NULL DEFAULT '',
					created_at  DATETIME NOT NULL,
					expires_at  DATETIME NOT NULL,
					used_at     DATETIME,
					used_serial TEXT     NOT NULL DEFAULT ''
				)`,
				`CREATE TABLE api_keys (
					id           TEXT     NOT NULL PRIMARY KEY,
					secret_hash  TEXT     NOT NULL,
					name         TEXT     NOT NULL DEFAULT '',
					scopes       TEXT     NOT NULL DEFAULT '',
					created_at   DATETIME NOT NULL,
					expires_at   DATETIME,
					revoked_at   DATETIME,
					last_used_at DATETIME
				)`,
				`CREATE TABLE audit_events (
					id     INTEGER  NOT NULL PRIMARY KEY AUTOINCREMENT,
					at     DATETIME NOT NULL,
					actor  TEXT     NOT NULL DEFAULT '',
					action TEXT     NOT NULL DEFAULT '',
					target TEXT     NOT NULL DEFAULT '',
					detail TEXT     NOT NULL DEFAULT ''
				)`,
				`CREATE INDEX idx_audit_events_at ON audit_events (at)`,
			},
			postgres: []string{
				`CREATE TABLE certificates (
					serial              TEXT        NOT NULL PRIMARY KEY,
					worker_id           TEXT        NOT NULL,
					pool                TEXT        NOT NULL,
					spiffe_id           TEXT        NOT NULL DEFAULT '',
					spki_sha256         TEXT        NOT NULL DEFAULT '',
					not_before          TIMESTAMPTZ NOT NULL,
					not_after           TIMESTAMPTZ NOT NULL,
					method              TEXT        NOT NULL DEFAULT '',
					enrollment_id       TEXT        NOT NULL DEFAULT '',
					attestation_subject TEXT        NOT NULL DEFAULT '',
					evidence            TEXT        NOT NULL DEFAULT '',
					parent_serial       TEXT        NOT NULL DEFAULT '',
					der                 BYTEA       NOT NULL,
					issued_at           TIMESTAMPTZ NOT NULL,
					revoked_at          TIMESTAMPTZ,
					revocation_reason   INTEGER,
					invalidity_date     TIMESTAMPTZ,
					retain_until        TIMESTAMPTZ NOT NULL
				)`,
				`CREATE INDEX idx_certificates_worker_validity ON certificates (worker_id, not_before, not_after)`,
				`CREATE INDEX idx_certificates_not_after ON certificates (not_after)`,
				`CREATE INDEX idx_certificates_pool_not_after ON certificates (pool, not_after)`,
				`CREATE INDEX idx_certificates_attestation_subject ON certificates (attestation_subject)`,
				`CREATE TABLE enrollment_tokens (
					id          TEXT        NOT NULL PRIMARY KEY,
					secret_hash TEXT        NOT NULL,
					pool        TEXT        NOT NULL,
					worker_id   TEXT        NOT NULL DEFAULT '',
					created_by  TEXT        NOT NULL DEFAULT '',
					created_at  TIMESTAMPTZ NOT NULL,
					expires_at  TIMESTAMPTZ NOT NULL,
					used_at     TIMESTAMPTZ,
					used_serial TEXT        NOT NULL DEFAULT ''
				)`,
				`CREATE TABLE api_keys (
					id           TEXT        NOT NULL PRIMARY KEY,
					secret_hash  TEXT        NOT NULL,
					name         TEXT        NOT NULL DEFAULT '',
					scopes       TEXT        NOT NULL DEFAULT '',
					created_at   TIMESTAMPTZ NOT NULL,
					expires_at   TIMESTAMPTZ,
					revoked_at   TIMESTAMPTZ,
					last_used_at TIMESTAMPTZ
				)`,
				`CREATE TABLE audit_events (
					id     BIGINT      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
					at     TIMESTAMPTZ NOT NULL,
					actor  TEXT        NOT NULL DEFAULT '',
					action TEXT        NOT NULL DEFAULT '',
					target TEXT        NOT NULL DEFAULT '',
					detail TEXT        NOT NULL DEFAULT ''
				)`,
				`CREATE INDEX idx_audit_events_at ON audit_events (at)`,
			},
		},
		{
			// 2: attestation freshness (challenges, single-use evidence)
			// and the start of a certificate's renewal chain.
			version: 2,
			sqlite: []string{
				`CREATE TABLE challenges (
					nonce_hash TEXT     NOT NULL PRIMARY KEY,
					created_at DATETIME NOT NULL,
					expires_at DATETIME NOT NULL,
					used_at    DATETIME
				)`,
				`CREATE INDEX idx_challenges_expires_at ON challenges (expires_at)`,
				`CREATE TABLE attestation_uses (
					use_key TEXT     NOT NULL PRIMARY KEY,
					serial  TEXT     NOT NULL DEFAULT '',
					used_at DATETIME NOT NULL
				)`,
				`ALTER TABLE certificates ADD COLUMN attested_at DATETIME`,
				`UPDATE certificates SET attested_at = issued_at`,
			},
			postgres: []string{
				`CREATE TABLE challenges (
					nonce_hash TEXT        NOT NULL PRIMARY KEY,
					created_at TIMESTAMPTZ NOT NULL,
					expires_at TIMESTAMPTZ NOT NULL,
					used_at    TIMESTAMPTZ
				)`,
				`CREATE INDEX idx_challenges_expires_at ON challenges (expires_at)`,
				`CREATE TABLE attestation_uses (
					use_key TEXT        NOT NULL PRIMARY KEY,
					serial  TEXT        NOT NULL DEFAULT '',
					used_at TIMESTAMPTZ NOT NULL
				)`,
				`ALTER TABLE certificates ADD COLUMN attested_at TIMESTAMPTZ`,
				`UPDATE certificates SET attested_at = issued_at`,
			},
		},
		{
			// 3: revocation. Each certificate's CRL shard (NULL for rows
			// issued before: their shard is computed from the serial), the
			// revoked rows a CRL build reads, and each shard's latest CRL.
			version: 3,
			sqlite: []string{
				`ALTER TABLE certificates ADD COLUMN crl_shard INTEGER`,
				`CREATE INDEX idx_certificates_revoked ON certificates (crl_shard, not_after) WHERE revoked_at IS NOT NULL`,
				`CREATE TABLE crls (
					shard       INTEGER  NOT NULL PRIMARY KEY,
					number      BIGINT   NOT NULL,
					this_update DATETIME NOT NULL,
					next_update DATETIME NOT NULL,
					der         BLOB     NOT NULL
				)`,
			},
			postgres: []string{
				`ALTER TABLE certificates ADD COLUMN crl_shard INTEGER`,
				`CREATE INDEX idx_certificates_revoked ON certificates (crl_shard, not_after) WHERE revoked_at IS NOT NULL`,
				`CREATE TABLE crls (
					shard       INTEGER     NOT NULL PRIMARY KEY,
					number      BIGINT      NOT NULL,
					this_update TIMESTAMPTZ NOT NULL,
					next_update TIMESTAMPTZ NOT NULL,
					der         BYTEA       NOT NULL
				)`,
			},
		},
		{
			// 4: artifact registrations with their CA receipts, keyed by
			// the signature's hash; the pruner's index on retain_until.
			// Worker history reads idx_certificates_worker_validity.
			version: 4,
			sqlite: []string{
				`CREATE TABLE artifacts (
					sig_sha256    TEXT     NOT NULL PRIMARY KEY,
					sha256        TEXT     NOT NULL,
					name          TEXT     NOT NULL DEFAULT '',
					serial        TEXT     NOT NULL,
					worker_id     TEXT     NOT NULL DEFAULT '',
					pool          TEXT     NOT NULL DEFAULT '',
					spiffe_id     TEXT     NOT NULL DEFAULT '',
					signature     TEXT     NOT NULL,
					receipt       TEXT     NOT NULL,
					registered_at DATETIME NOT NULL,
					expires_at    DATETIME NOT NULL
				)`,
				`CREATE INDEX idx_artifacts_sha256 ON artifacts (sha256, registered_at)`,
				`CREATE INDEX idx_artifacts_serial ON artifacts (serial)`,
				`CREATE INDEX idx_artifacts_expires_at ON artifacts (expires_at)`,
				`CREATE INDEX idx_certificates_retain_until ON certificates (retain_until)`,
			},
			postgres: []string{
				`CREATE TABLE artifacts (
					sig_sha256    TEXT        NOT NULL PRIMARY KEY,
					sha256        TEXT        NOT NULL,
					name          TEXT        NOT NULL DEFAULT '',
					serial        TEXT        NOT NULL,
					worker_id     TEXT        NOT NULL DEFAULT '',
					pool          TEXT        NOT NULL DEFAULT '',
					spiffe_id     TEXT        NOT NULL DEFAULT '',
					signature     TEXT        NOT NULL,
					receipt       TEXT        NOT NULL,
					registered_at TIMESTAMPTZ NOT NULL,
					expires_at    TIMESTAMPTZ NOT NULL
				)`,
				`CREATE INDEX idx_artifacts_sha256 ON artifacts (sha256, registered_at)`,
				`CREATE INDEX idx_artifacts_serial ON artifacts (serial)`,
				`CREATE INDEX idx_artifacts_expires_at ON artifacts (expires_at)`,
				`CREATE INDEX idx_certificates_retain_until ON certificates (retain_until)`,
			},
		},
		{
			// 5: TPM enrollment. EKs an operator registered (for TPMs
			// without an EK certificate, or to name a worker), and the
			// state of a two-round enrollment between its rounds; the
			// session's single use is its row in challenges.
			version: 5,
			sqlite: []string{
				`CREATE TABLE tpm_eks (
					ek_sha256  TEXT     NOT NULL PRIMARY KEY,
					pool       TEXT     NOT NULL,
					worker_id  TEXT     NOT NULL DEFAULT '',
					created_by TEXT     NOT NULL DEFAULT '',
					created_at DATETIME NOT NULL
				)`,
				`CREATE TABLE tpm_sessions (
					session_hash TEXT     NOT NULL PRIMARY KEY,
					secret_hash  TEXT     NOT NULL,
					pool         TEXT     NOT NULL,
					worker_id    TEXT     NOT NULL,
					ek_sha256    TEXT     NOT NULL,
					ak_name      TEXT     NOT NULL,
					evidence     TEXT     NOT NULL DEFAULT '',
					csr          BLOB     NOT NULL,
					created_at   DATETIME NOT NULL,
					expires_at   DATETIME NOT NULL
				)`,
				`CREATE INDEX idx_tpm_sessions_expires_at ON tpm_sessions (expires_at)`,
			},
			postgres: []string{
				`CREATE TABLE tpm_eks (
					ek_sha256  TEXT        NOT NULL PRIMARY KEY,
					pool       TEXT        NOT NULL,
					worker_id  TEXT        NOT NULL DEFAULT '',
					created_by TEXT        NOT NULL DEFAULT '',
					created_at TIMESTAMPTZ NOT NULL
				)`,
				`CREATE TABLE tpm_sessions (
					session_hash TEXT        NOT NULL PRIMARY KEY,
					secret_hash  TEXT        NOT NULL,
					pool         TEXT        NOT NULL,
					worker_id    TEXT        NOT NULL,
					ek_sha256    TEXT        NOT NULL,
					ak_name      TEXT        NOT NULL,
					evidence     TEXT        NOT NULL DEFAULT '',
					csr          BYTEA       NOT NULL,
					created_at   TIMESTAMPTZ NOT NULL,
					expires_at   TIMESTAMPTZ NOT NULL
				)`,
				`CREATE INDEX idx_tpm_sessions_expires_at ON tpm_sessions (expires_at)`,
			},
		},
	}
}

// latestVersion is the newest schema version this program knows.
func latestVersion() int {
	m := migrations()
	return m[len(m)-1].version
}

// dialect holds the few statements that differ between the databases and
// are not written through gorm.
type dialect struct {
	createVersionTable string
	maxVersion         string
	insertVersion      string
	lock               string // "" when the database needs no lock
	unlock             string
}

func sqliteDialect() dialect {
	return dialect{
		createVersionTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER  NOT NULL PRIMARY KEY,
			applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
		)`,
		maxVersion:    `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`,
		insertVersion: `INSERT INTO schema_migrations (version) VALUES (?)`,
	}
}

func postgresDialect() dialect {
	return dialect{
		createVersionTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER     NOT NULL PRIMARY KEY,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`,
		maxVersion:    `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`,
		insertVersion: `INSERT INTO schema_migrations (version) VALUES ($1)`,
		lock:          `SELECT pg_advisory_lock($1, hashtext(COALESCE(current_schema(), '')))`,
		unlock:        `SELECT pg_advisory_unlock($1, hashtext(COALESCE(current_schema(), '')))`,
	}
}

// migrate brings the schema up to date on one dedicated connection. On
// PostgreSQL it holds a session advisory lock throughout, so replicas
// starting together apply each migration once; on SQLite each transaction
// begins IMMEDIATE, which serializes writers. Either way the version is
// read again inside each migration's transaction.
func migrate(ctx context.Context, db *sql.DB, d dialect, postgres bool) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: migrate: %w", cerr)
		}
	}()

	if d.lock != "" {
		if _, err := conn.ExecContext(ctx, d.lock, migrateLockKey); err != nil {
			return fmt.Errorf("store: migrate: take advisory lock: %w", err)
		}
		defer func() {
			// Unlock even if ctx was canceled; if that fails, drop the
			// connection so the lock cannot outlive this call in the pool.
			uctx := context.WithoutCancel(ctx)
			if _, uerr := conn.ExecContext(uctx, d.unlock, migrateLockKey); uerr != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
				if err == nil {
					err = fmt.Errorf("store: migrate: release advisory lock: %w", uerr)
				}
			}
		}()
	}

	if _, err := conn.ExecContext(ctx, d.createVersionTable); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, conn, d)
	if err != nil {
		return err
	}
	if latest := latestVersion(); current > latest {
		return fmt.Errorf("store: database schema version %d, this program knows up to %d: %w", current, latest, ErrSchemaTooNew)
	}
	for _, m := range migrations() {
		if m.version <= current {
			continue
		}
		stmts := m.sqlite
		if postgres {
			stmts = m.postgres
		}
		if err := applyMigration(ctx, conn, d, m.version, stmts); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, d dialect, version int, stmts []string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %d: %w", version, err)
	}
	defer func() { _ = tx.Rollback() }()

	var current int
	if err := tx.QueryRowContext(ctx, d.maxVersion).Scan(&current); err != nil {
		return fmt.Errorf("store: migration %d: read version: %w", version, err)
	}
	if current >= version {
		return nil // applied meanwhile by another process
	}
	for i, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("store: migration %d statement %d: %w", version, i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.insertVersion, version); err != nil {
		return fmt.Errorf("store: migration %d: record version: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %d: commit: %w", version, err)
	}
	return nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q queryRower, d dialect) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, d.maxVersion).Scan(&v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}
