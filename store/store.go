package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	gormsqlite "github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Driver names accepted in Config.Driver.
const (
	// DriverSQLite selects SQLite, through a pure-Go driver.
	DriverSQLite = "sqlite"
	// DriverPostgres selects PostgreSQL, through pgx.
	DriverPostgres = "postgres"
)

// Config says which database a Store uses.
type Config struct {
	// Driver is DriverSQLite (the default when empty) or DriverPostgres.
	Driver string
	// DSN locates the database. For SQLite it is a file path or a
	// "file:...?..." URI; a file that does not exist is created with mode
	// 0600. For PostgreSQL it is a libpq key/value string or a
	// postgres:// URL, as pgx accepts.
	DSN string
	// Logger receives the store's warnings. Nil discards them. SQL is
	// never logged with its arguments.
	Logger *slog.Logger
	// MaxConns caps the PostgreSQL connections this store opens, and as
	// many are kept open when idle, so that a burst does not pay for new
	// connections (a SCRAM handshake each). 0 means DefaultMaxConns.
	// SQLite always uses one connection.
	MaxConns int
	// MaxBatch is the most issuances RecordIssuance writes in one
	// transaction (group commit); 0 means DefaultMaxBatch, 1 turns
	// batching off.
	MaxBatch int
	// MaxBatches is how many issuance transactions may run at once on
	// PostgreSQL; 0 means DefaultMaxBatchesPostgres, and no more than
	// MaxConns. SQLite runs one.
	MaxBatches int
}

// DefaultMaxConns is Config.MaxConns when it is 0.
const DefaultMaxConns = 16

// Store persists the authority's state. It is safe for concurrent use.
// Create it with Open and release it with Close.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	driver  string
	dialect dialect
	// dsn is Config.DSN, for the PostgreSQL connection
	// ListenRevocations opens outside the pool.
	dsn string
	log *slog.Logger

	// commits queues RecordIssuance calls into batch transactions.
	commits *batcher[*queuedIssuance]
	// tokenReads queues Token calls into batch SELECTs.
	tokenReads *batcher[*tokenLookup]

	// locksMu guards locks, the names TryLock holds on SQLite.
	locksMu sync.Mutex
	locks   map[string]bool
}

// Open connects to the database cfg names, checks that it answers, and
// applies any pending migrations. It fails with ErrSchemaTooNew when the
// database was migrated by a newer program.
//
// SQLite runs in WAL mode with a 5 s busy timeout and foreign keys on, over
// a single connection, so concurrent transactions of this process queue
// rather than fail with SQLITE_BUSY. PostgreSQL uses a normal pool.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Driver == "" {
		cfg.Driver = DriverSQLite
	}
	if cfg.MaxConns < 0 || cfg.MaxBatch < 0 || cfg.MaxBatches < 0 {
		return nil, errors.New("store: MaxConns, MaxBatch and MaxBatches must not be negative")
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatches == 0 {
		cfg.MaxBatches = DefaultMaxBatchesPostgres
	}

	gcfg := &gorm.Config{
		Logger:                 newGormLogger(log),
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	}
	s := &Store{driver: cfg.Driver, dsn: cfg.DSN, log: log, locks: map[string]bool{}}
	var dialector gorm.Dialector
	switch cfg.Driver {
	case DriverSQLite:
		sqlDB, err := openSQLite(cfg.DSN, log)
		if err != nil {
			return nil, err
		}
		s.sqlDB = sqlDB
		s.dialect = sqliteDialect()
		dialector = gormsqlite.Dialector{Conn: sqlDB}
	case DriverPostgres:
		if cfg.DSN == "" {
			return nil, errors.New("store: postgres DSN is required")
		}
		s.dialect = postgresDialect()
		dialector = postgres.New(postgres.Config{DSN: cfg.DSN})
	default:
		return nil, fmt.Errorf("store: unknown driver %q (want %q or %q)", cfg.Driver, DriverSQLite, DriverPostgres)
	}

	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		if s.sqlDB != nil {
			_ = s.sqlDB.Close()
		}
		return nil, fmt.Errorf("store: open %s: %w", cfg.Driver, err)
	}
	s.db = db
	batches := 1
	if s.sqlDB == nil {
		if s.sqlDB, err = db.DB(); err != nil {
			return nil, fmt.Errorf("store: open %s: %w", cfg.Driver, err)
		}
		s.sqlDB.SetMaxOpenConns(cfg.MaxConns)
		s.sqlDB.SetMaxIdleConns(cfg.MaxConns)
		batches = min(cfg.MaxBatches, cfg.MaxConns)
	}
	s.commits = &batcher[*queuedIssuance]{maxBatch: cfg.MaxBatch, maxRunning: batches, run: s.commitIssuances}
	s.tokenReads = &batcher[*tokenLookup]{maxBatch: maxTokenReadBatch, maxRunning: batches, run: s.readTokens}

	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := migrate(ctx, s.sqlDB, s.dialect, s.driver == DriverPostgres); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database connections.
func (s *Store) Close() error {
	if err := s.sqlDB.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers; it backs readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.driver, err)
	}
	return nil
}

// Driver returns the database driver in use: DriverSQLite or
// DriverPostgres.
func (s *Store) Driver() string { return s.driver }

// SchemaVersion returns the newest migration recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.sqlDB, s.dialect)
}

// inTx runs fn in a transaction and commits it if fn returns nil. Errors
// from fn are returned as they are (they carry the "store: " prefix);
// errors beginning or committing are wrapped with op. Whatever is not
// committed, including on panic, is rolled back.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *gorm.DB) error) error {
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return fmt.Errorf("store: %s: begin: %w", op, tx.Error)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit().Error; err != nil {
		return fmt.Errorf("store: %s: commit: %w", op, err)
	}
	committed = true
	return nil
}
