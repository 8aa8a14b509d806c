package store

import "context"

// LatestVersion exposes the newest schema version to the external tests.
func LatestVersion() int { return latestVersion() }

// ExecRaw runs a statement with gorm's "?" placeholders on s's database.
func ExecRaw(ctx context.Context, s *Store, sql string, args ...any) error {
	return s.db.WithContext(ctx).Exec(sql, args...).Error
}

// QueryStrings runs a query and returns its single text column.
func QueryStrings(ctx context.Context, s *Store, sql string, args ...any) ([]string, error) {
	var out []string
	err := s.db.WithContext(ctx).Raw(sql, args...).Scan(&out).Error
	return out, err
}
