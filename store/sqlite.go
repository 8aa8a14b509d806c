package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
)

// sqliteTimeLayout is how times are stored on SQLite: fixed width, always
// UTC, microseconds, so that text comparison is time comparison. The
// driver's own format ("2006-01-02 15:04:05.999999999-07:00") trims
// trailing zeros and keeps the caller's offset. The driver parses this
// layout back for columns declared DATETIME.
const sqliteTimeLayout = "2006-01-02 15:04:05.000000-07:00"

// sqliteParams are applied to every SQLite connection. busy_timeout makes
// a second process wait for the write lock instead of failing at once;
// _txlock=immediate takes that lock at BEGIN so a transaction never fails
// upgrading from reader to writer.
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"

// openSQLite opens dsn with one connection, so that the process's
// transactions queue in database/sql instead of failing with SQLITE_BUSY.
func openSQLite(dsn string, log *slog.Logger) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("store: sqlite DSN (a file path) is required")
	}
	base, query, _ := strings.Cut(dsn, "?")
	if path, ok := sqliteFilePath(base, query); ok {
		if err := createPrivateFile(path, log); err != nil {
			return nil, err
		}
	}
	full := base + "?" + sqliteParams
	if query != "" {
		full += "&" + query
	}
	db := sql.OpenDB(sqliteConnector{dsn: full, drv: &gosqlite.Driver{}})
	db.SetMaxOpenConns(1)
	return db, nil
}

// sqliteFilePath returns the file an SQLite DSN names, and false for an
// in-memory database.
func sqliteFilePath(base, query string) (string, bool) {
	path := base
	if p, ok := strings.CutPrefix(base, "file:"); ok {
		if q, err := url.ParseQuery(query); err == nil && q.Get("mode") == "memory" {
			return "", false
		}
		// file:///abs/path and file://localhost/abs/path name /abs/path.
		if rest, ok := strings.CutPrefix(p, "//"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				p = rest[i:]
			}
		}
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
		path = p
	}
	if path == "" || path == ":memory:" {
		return "", false
	}
	return path, true
}

// createPrivateFile creates the database file readable only by its owner
// if it does not exist yet; SQLite gives its -wal and -shm files the same
// mode. An existing file's mode is kept, with a warning if it is open to
// others.
func createPrivateFile(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("store: create sqlite database: %w", err)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create sqlite database: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("store: sqlite database file is accessible to other users",
			slog.String("path", path), slog.String("mode", fi.Mode().Perm().String()))
	}
	return nil
}

// sqliteConnector opens connections of the pure-Go SQLite driver wrapped
// in sqliteConn. It does not register a driver name: no global state.
type sqliteConnector struct {
	dsn string
	drv *gosqlite.Driver
}

func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return newSQLiteConn(conn)
}

func (c sqliteConnector) Driver() driver.Driver { return c.drv }

// sqliteConn forwards to the driver's connection and adds one thing: it
// converts every time.Time argument to sqliteTimeLayout, so every write and
// every comparison uses the same sortable text.
type sqliteConn struct {
	driver.Conn
	beginTx driver.ConnBeginTx
	prepare driver.ConnPrepareContext
	exec    driver.ExecerContext
	query   driver.QueryerContext
	ping    driver.Pinger
}

func newSQLiteConn(c driver.Conn) (*sqliteConn, error) {
	w := &sqliteConn{Conn: c}
	var ok [5]bool
	w.beginTx, ok[0] = c.(driver.ConnBeginTx)
	w.prepare, ok[1] = c.(driver.ConnPrepareContext)
	w.exec, ok[2] = c.(driver.ExecerContext)
	w.query, ok[3] = c.(driver.QueryerContext)
	w.ping, ok[4] = c.(driver.Pinger)
	for _, o := range ok {
		if !o {
			_ = c.Close()
			return nil, fmt.Errorf("store: sqlite driver connection %T lacks a context method", c)
		}
	}
	return w, nil
}

func (c *sqliteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.beginTx.BeginTx(ctx, opts)
}

func (c *sqliteConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.prepare.PrepareContext(ctx, query)
}

func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.exec.ExecContext(ctx, query, args)
}

func (c *sqliteConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.query.QueryContext(ctx, query, args)
}

func (c *sqliteConn) Ping(ctx context.Context) error { return c.ping.Ping(ctx) }

// CheckNamedValue implements driver.NamedValueChecker: the default
// conversion (which resolves driver.Valuer and pointers), then time.Time
// to fixed-width UTC text.
func (c *sqliteConn) CheckNamedValue(nv *driver.NamedValue) error {
	v, err := driver.DefaultParameterConverter.ConvertValue(nv.Value)
	if err != nil {
		return err
	}
	if t, ok := v.(time.Time); ok {
		v = formatSQLiteTime(t)
	}
	nv.Value = v
	return nil
}

func formatSQLiteTime(t time.Time) string {
	return utc(t).Format(sqliteTimeLayout)
}
