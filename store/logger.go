package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// gormLogger routes gorm's own messages to a slog.Logger at Warn and
// above. It never logs SQL arguments: ParamsFilter drops them before gorm
// renders a statement, and statements are logged only when they fail, at
// Debug, because the error is returned to the caller anyway.
type gormLogger struct {
	log *slog.Logger
}

var (
	_ gormlogger.Interface = gormLogger{}
	_ gorm.ParamsFilter    = gormLogger{}
)

func newGormLogger(log *slog.Logger) gormLogger { return gormLogger{log: log} }

func (l gormLogger) LogMode(gormlogger.LogLevel) gormlogger.Interface { return l }

func (l gormLogger) Info(context.Context, string, ...any) {}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "store: gorm: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, "store: gorm: "+fmt.Sprintf(msg, args...))
}

func (l gormLogger) Trace(ctx context.Context, _ time.Time, fc func() (string, int64), err error) {
	if err == nil || errors.Is(err, gorm.ErrRecordNotFound) || !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	sql, _ := fc()
	l.log.DebugContext(ctx, "store: statement failed", slog.String("sql", sql), slog.Any("error", err))
}

// ParamsFilter drops a statement's arguments so rendered SQL shows only
// placeholders.
func (l gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
