package store

import (
	"context"
	"fmt"
	"time"
)

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

// ExplainWorkerCertificates returns the plan of WorkerCertificates' query
// for q, one line per row (the last column: "QUERY PLAN" on PostgreSQL,
// "detail" of EXPLAIN QUERY PLAN on SQLite). On PostgreSQL, prefix is
// placed after EXPLAIN, such as "(ANALYZE, BUFFERS)".
func ExplainWorkerCertificates(ctx context.Context, s *Store, q WorkerQuery, prefix string) ([]string, error) {
	sql, args, _, err := workerHistorySQL(q)
	if err != nil {
		return nil, err
	}
	return explain(ctx, s, sql, args, prefix)
}

func explain(ctx context.Context, s *Store, sql string, args []any, prefix string) ([]string, error) {
	explain := "EXPLAIN QUERY PLAN "
	if s.driver == DriverPostgres {
		explain = "EXPLAIN " + prefix + " "
	}
	rows, err := s.db.WithContext(ctx).Raw(explain+sql, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(*vals[len(vals)-1].(*any)))
	}
	return out, rows.Err()
}

// ExplainPrune returns the plans of Prune's batch DELETE statements at
// now, one per table, each as its lines. On PostgreSQL, prefix is placed
// after EXPLAIN, such as "(ANALYZE, BUFFERS)"; ANALYZE runs the DELETE.
func ExplainPrune(ctx context.Context, s *Store, now time.Time, batch int, prefix string) ([][]string, error) {
	var out [][]string
	for _, t := range pruneTargets(&PruneResult{}) {
		stmt, args := t.deleteBatch(utc(now), batch, s.driver == DriverPostgres)
		plan, err := explain(ctx, s, stmt, args, prefix)
		if err != nil {
			return nil, err
		}
		out = append(out, plan)
	}
	return out, nil
}

// MaxNotifiedSerials is the most certificates a revocation lists in
// notices; past it, one Resync notice is sent.
const MaxNotifiedSerials = maxNotifiedSerials

// RecordBatch writes rs in one transaction, as the committer does with
// the issuances queued together, and returns each one's result.
func RecordBatch(ctx context.Context, s *Store, rs []Issuance) []error {
	ptrs := make([]*Issuance, len(rs))
	for i := range rs {
		if err := checkIssuance(&rs[i]); err != nil {
			panic(err)
		}
		ptrs[i] = &rs[i]
	}
	return s.recordBatch(ctx, ptrs)
}
