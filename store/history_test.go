package store_test

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// seedHistory records worker w1's overlapping certificates (a3 and a4
// share a NotBefore) and one of w2, and returns w1's serials newest first.
func seedHistory(t *testing.T, s *store.Store, now time.Time) []string {
	t.Helper()
	for _, c := range []struct {
		serial, worker string
		nb, na         time.Duration
	}{
		{"a1", "w1", -48 * time.Hour, -24 * time.Hour},
		{"a2", "w1", -30 * time.Hour, -6 * time.Hour},
		{"a3", "w1", -8 * time.Hour, 16 * time.Hour},
		{"a4", "w1", -8 * time.Hour, time.Hour},
		{"a5", "w1", 0, 24 * time.Hour},
		{"b1", "w2", -8 * time.Hour, 16 * time.Hour},
	} {
		cert := testCert(c.serial, c.worker, "p", now)
		cert.NotBefore, cert.NotAfter = now.Add(c.nb), now.Add(c.na)
		issueCert(t, s, cert, now)
	}
	return []string{"a5", "a4", "a3", "a2", "a1"}
}

func certSerials(cs []store.Certificate) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	return out
}

func TestWorkerCertificates(t *testing.T) {
	t.Parallel()
	now := epoch()
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	cursor := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	tests := []struct {
		name    string
		q       store.WorkerQuery
		want    []string
		wantErr error
	}{
		{"ok/all-retained-newest-first-ties-by-serial", store.WorkerQuery{WorkerID: "w1"}, []string{"a5", "a4", "a3", "a2", "a1"}, nil},
		{"ok/valid-at-exactly-not-before", store.WorkerQuery{WorkerID: "w1", ValidAt: at(0)}, []string{"a5", "a4", "a3"}, nil},
		{"ok/valid-at-one-microsecond-before-not-before", store.WorkerQuery{WorkerID: "w1", ValidAt: at(-time.Microsecond)}, []string{"a4", "a3"}, nil},
		{"ok/valid-at-exactly-not-after", store.WorkerQuery{WorkerID: "w1", ValidAt: at(-6 * time.Hour)}, []string{"a4", "a3", "a2"}, nil},
		{"ok/valid-at-one-second-after-not-after", store.WorkerQuery{WorkerID: "w1", ValidAt: at(-6*time.Hour + time.Second)}, []string{"a4", "a3"}, nil},
		{"ok/valid-at-in-another-zone", store.WorkerQuery{WorkerID: "w1", ValidAt: ptr(now.Add(-6 * time.Hour).In(time.FixedZone("UTC-7", -7*3600)))}, []string{"a4", "a3", "a2"}, nil},
		{"ok/valid-at-before-any", store.WorkerQuery{WorkerID: "w1", ValidAt: at(-100 * time.Hour)}, []string{}, nil},
		{"ok/unknown-worker", store.WorkerQuery{WorkerID: "nobody"}, []string{}, nil},
		{"ok/cursor-between-equal-not-before", store.WorkerQuery{WorkerID: "w1", After: cursor(strconv.FormatInt(now.Add(-8*time.Hour).UnixMicro(), 10) + "/a4")}, []string{"a3", "a2", "a1"}, nil},
		{"fail/no-worker", store.WorkerQuery{}, nil, errAny},
		{"fail/cursor-not-base64", store.WorkerQuery{WorkerID: "w1", After: "not a cursor!"}, nil, store.ErrInvalidCursor},
		{"fail/cursor-without-separator", store.WorkerQuery{WorkerID: "w1", After: cursor("12345")}, nil, store.ErrInvalidCursor},
		{"fail/cursor-time-not-a-number", store.WorkerQuery{WorkerID: "w1", After: cursor("yesterday/a4")}, nil, store.ErrInvalidCursor},
		{"fail/cursor-without-serial", store.WorkerQuery{WorkerID: "w1", After: cursor("12345/")}, nil, store.ErrInvalidCursor},
	}
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		seedHistory(t, s, now)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				certs, next, err := s.WorkerCertificates(ctxT(t), tc.q)
				checkErr(t, err, tc.wantErr)
				if err != nil {
					return
				}
				if got := certSerials(certs); !slices.Equal(got, tc.want) || next != "" {
					t.Fatalf("WorkerCertificates = %v, next %q; want %v and no next page", got, next, tc.want)
				}
				for _, c := range certs {
					if c.WorkerID != tc.q.WorkerID || c.NotBefore.Location() != time.UTC || len(c.DER) == 0 {
						t.Errorf("row %s: worker %q, NotBefore %v, %d bytes of DER", c.Serial, c.WorkerID, c.NotBefore, len(c.DER))
					}
				}
			})
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestWorkerCertificates_Pagination reads every page at several page
// sizes: each row comes exactly once, in order, and the last page has no
// cursor; a certificate issued between pages shifts nothing.
func TestWorkerCertificates_Pagination(t *testing.T) {
	t.Parallel()
	now := epoch()
	validAt := now.Add(-6 * time.Hour)
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		all := seedHistory(t, s, now)
		for _, tc := range []struct {
			name      string
			q         store.WorkerQuery
			want      []string
			wantPages int
		}{
			{"ok/limit-1-splits-equal-not-before", store.WorkerQuery{WorkerID: "w1", Limit: 1}, all, 5},
			{"ok/limit-2", store.WorkerQuery{WorkerID: "w1", Limit: 2}, all, 3},
			{"ok/limit-2-valid-at", store.WorkerQuery{WorkerID: "w1", Limit: 2, ValidAt: &validAt}, []string{"a4", "a3", "a2"}, 2},
			{"ok/limit-equal-to-rows-has-no-next-page", store.WorkerQuery{WorkerID: "w1", Limit: 5}, all, 1},
			{"ok/limit-0-is-the-default", store.WorkerQuery{WorkerID: "w1"}, all, 1},
			{"ok/limit-above-max-is-accepted", store.WorkerQuery{WorkerID: "w1", Limit: 1 << 30}, all, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []string
				q := tc.q
				pages := 0
				for {
					certs, next, err := s.WorkerCertificates(ctxT(t), q)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if q.Limit > 0 && len(certs) > q.Limit {
						t.Fatalf("page %d has %d rows, limit %d", pages, len(certs), q.Limit)
					}
					got = append(got, certSerials(certs)...)
					if next == "" {
						break
					}
					if pages > 10 {
						t.Fatalf("more than 10 pages: %v", got)
					}
					q.After = next
				}
				if !slices.Equal(got, tc.want) || pages != tc.wantPages {
					t.Fatalf("pages = %d, rows %v; want %d, %v", pages, got, tc.wantPages, tc.want)
				}
			})
		}

		t.Run("ok/issued-between-pages-shifts-nothing", func(t *testing.T) {
			certs, next, err := s.WorkerCertificates(ctxT(t), store.WorkerQuery{WorkerID: "w1", Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			got := certSerials(certs)
			issueCert(t, s, testCert("a6", "w1", "p", now.Add(time.Hour)), now.Add(time.Hour))
			certs, _, err = s.WorkerCertificates(ctxT(t), store.WorkerQuery{WorkerID: "w1", Limit: 10, After: next})
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, certSerials(certs)...); !slices.Equal(got, all) {
				t.Fatalf("rows = %v, want %v", got, all)
			}
		})
	})
}

// TestWorkerCertificates_PageSize: a zero Limit reads DefaultPageSize
// rows, a larger one than MaxPageSize reads MaxPageSize.
func TestWorkerCertificates_PageSize(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		const rows = store.MaxPageSize + 1
		err := store.ExecRaw(ctxT(t), s, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO certificates (serial, worker_id, pool, not_before, not_after, der, issued_at, retain_until)
			SELECT CAST(i + 100000 AS TEXT), 'w1', 'p', ?, ?, ?, ?, ? FROM n`,
			rows, now, now.Add(time.Hour), []byte{0x30, 0x00}, now, now.Add(day))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			limit int
			want  int
		}{
			{"ok/zero-is-default", 0, store.DefaultPageSize},
			{"ok/negative-is-default", -1, store.DefaultPageSize},
			{"ok/above-max-is-capped", store.MaxPageSize + 500, store.MaxPageSize},
		} {
			t.Run(tc.name, func(t *testing.T) {
				certs, next, err := s.WorkerCertificates(ctxT(t), store.WorkerQuery{WorkerID: "w1", Limit: tc.limit})
				if err != nil {
					t.Fatal(err)
				}
				if len(certs) != tc.want || next == "" {
					t.Fatalf("%d rows, next %q; want %d and a next page", len(certs), next, tc.want)
				}
				if certs[0].Serial != "101001" || certs[len(certs)-1].Serial != strconv.Itoa(101001-tc.want+1) {
					t.Fatalf("page %s..%s, want the highest serials first", certs[0].Serial, certs[len(certs)-1].Serial)
				}
			})
		}
	})
}

// TestWorkerCertificates_SQLiteUsesWorkerIndex: the query searches
// idx_certificates_worker_validity rather than scanning the table. (The
// PostgreSQL plan at scale is shown by BenchmarkWorkerHistoryPostgres.)
func TestWorkerCertificates_SQLiteUsesWorkerIndex(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.DriverSQLite)
	now := epoch()
	for _, q := range []store.WorkerQuery{
		{WorkerID: "w1"},
		{WorkerID: "w1", ValidAt: &now},
		{WorkerID: "w1", ValidAt: &now, After: base64.RawURLEncoding.EncodeToString([]byte("1/ab"))},
	} {
		plan, err := store.ExplainWorkerCertificates(ctxT(t), s, q, "")
		if err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, "\n"); !strings.Contains(p, "SEARCH certificates USING INDEX idx_certificates_worker_validity") {
			t.Errorf("plan for %+v:\n%s\nwant a search of idx_certificates_worker_validity", q, p)
		}
	}
}
