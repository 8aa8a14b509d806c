package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// BenchmarkRecordIssuance measures one token-less issuance with the pool
// cap checked and an audit event, per driver.
func BenchmarkRecordIssuance(b *testing.B) {
	for _, driver := range storetest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			s := storetest.Open(b, driver)
			ctx := context.Background()
			now := epoch()
			i := 0
			for b.Loop() {
				i++
				serial := fmt.Sprintf("%016x", i)
				err := s.RecordIssuance(ctx, store.Issuance{
					Certificate:      testCert(serial, fmt.Sprintf("w%d", i%100), "p", now),
					MaxActiveWorkers: 1000,
					Now:              now,
					Audit:            store.AuditEvent{Actor: "system", Action: "certificate.issued", Target: serial},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordIssuanceParallel is the token enrollment's ledger write
// (token consumed, certificate and audit event inserted) from 64
// goroutines at once per GOMAXPROCS: what group commit is for. One op is
// one durable issuance; the tokens are made before the timer starts, so
// give a count (-benchtime 5000x). The batch=1 runs turn group commit off:
// one transaction per issuance, as before.
func BenchmarkRecordIssuanceParallel(b *testing.B) {
	for _, driver := range storetest.Drivers(b) {
		for _, batch := range []int{0, 1} {
			name := driver
			if batch == 1 {
				name += "/batch=1"
			}
			b.Run(name, func(b *testing.B) {
				cfg := storetest.Config(b, driver)
				cfg.MaxBatch = batch
				benchParallelIssuance(b, storetest.OpenConfig(b, cfg))
			})
		}
	}
}

func benchParallelIssuance(b *testing.B, s *store.Store) {
	ctx := context.Background()
	now := epoch()
	for i := range b.N {
		if err := s.CreateToken(ctx, testToken(fmt.Sprintf("t%d", i), "p", now), store.AuditEvent{}); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			serial := fmt.Sprintf("%016x", i)
			err := s.RecordIssuance(ctx, store.Issuance{
				Certificate: testCert(serial, fmt.Sprintf("w%d", i), "p", now),
				TokenID:     fmt.Sprintf("t%d", i),
				Now:         now,
				Audit:       store.AuditEvent{Actor: "token:t", Action: "certificate.issued", Target: serial},
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Environment variables sizing the PostgreSQL scale benchmarks.
const (
	// benchRowsEnv is the number of synthetic ledger rows to load
	// (default defaultBenchRows), such as 10000000.
	benchRowsEnv = "WORKERCA_BENCH_ROWS"
	// benchWorkersEnv is the number of distinct workers they belong to
	// (default min(100000, rows/10)).
	benchWorkersEnv = "WORKERCA_BENCH_WORKERS"
	// defaultBenchRows keeps a plain `go test -bench` to seconds.
	defaultBenchRows = 100000
	// benchLoadChunk is the number of rows per INSERT ... SELECT.
	benchLoadChunk = 1000000
)

// benchHistory is a PostgreSQL store in a schema of its own (dropped when
// the benchmark ends) loaded with synthetic history: certificates of 24 h
// issued evenly over a year to each worker, each worker at its own phase.
type benchHistory struct {
	s       *store.Store
	rows    int
	workers int
	// t0 is the first NotBefore; every NotBefore is within a year of it.
	t0 time.Time
	// summary says what was loaded, for the benchmarks' logs.
	summary string
}

const benchYear = 365 * 24 * time.Hour

func benchEnvInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// loadBenchHistory opens a fresh PostgreSQL store and loads it with
// WORKERCA_BENCH_ROWS rows in INSERT ... SELECT FROM generate_series
// statements: serials md5(i), 1% revoked, 16 CRL shards, retention 7
// days past notAfter, and one artifact registration per ten certificates.
// The tables keep every index their migrations create.
func loadBenchHistory(b *testing.B) *benchHistory {
	b.Helper()
	rows := benchEnvInt(b, benchRowsEnv, defaultBenchRows)
	workers := benchEnvInt(b, benchWorkersEnv, max(1, min(100000, rows/10)))
	h := &benchHistory{s: storetest.Open(b, store.DriverPostgres), rows: rows, workers: workers, t0: epoch()}
	ctx := context.Background()
	perWorker := (rows + workers - 1) / workers
	stepMicros := benchYear.Microseconds() / int64(perWorker)
	start := time.Now()
	for lo := 0; lo < rows; lo += benchLoadChunk {
		hi := min(lo+benchLoadChunk, rows) - 1
		err := store.ExecRaw(ctx, h.s, fmt.Sprintf(`INSERT INTO certificates (serial, worker_id, pool, spiffe_id,
				spki_sha256, not_before, not_after, method, enrollment_id, attestation_subject, evidence, der,
				issued_at, revoked_at, revocation_reason, retain_until, attested_at, crl_shard)
			SELECT md5(i::text), 'w' || w, 'pool-' || (w %% 10), 'spiffe://bench.example/worker/w' || w,
				md5('spki' || i::text) || md5('spki2' || i::text), nb, nb + interval '24 hours', 'token',
				'tok-' || i, 'token:tok-' || i, '{}', '\x3003020101'::bytea, nb,
				CASE WHEN i %% 100 = 0 THEN nb + interval '1 hour' END, CASE WHEN i %% 100 = 0 THEN 1 END,
				nb + interval '8 days', nb, i %% 16
			FROM (SELECT i, i %% %[1]d AS w,
					CAST(? AS timestamptz) + make_interval(secs => ((i / %[1]d) * %[2]d + (i %% %[1]d) * 2654435761 %% %[2]d) / 1e6) AS nb
				FROM generate_series(CAST(%[3]d AS bigint), %[4]d) AS i) AS g`, workers, stepMicros, lo, hi), h.t0)
		if err != nil {
			b.Fatalf("load rows %d-%d: %v", lo, hi, err)
		}
	}
	// One artifact registration per ten certificates, by a random one,
	// expiring 90 days after its signer was issued: all unexpired at t0.
	err := store.ExecRaw(ctx, h.s, fmt.Sprintf(`INSERT INTO artifacts (sig_sha256, sha256, name, serial, worker_id,
			signature, receipt, registered_at, expires_at)
		SELECT md5('sig' || j::text), md5('artifact' || j::text), 'build.tar', c.serial, c.worker_id,
			'sig', 'receipt', c.not_before, c.not_before + interval '90 days'
		FROM generate_series(CAST(0 AS bigint), %d) AS j
		JOIN certificates AS c ON c.serial = md5(((j * 7) %% %d)::text)`, rows/10-1, rows))
	if err != nil {
		b.Fatalf("load artifacts: %v", err)
	}
	if err := store.ExecRaw(ctx, h.s, `ANALYZE certificates, artifacts`); err != nil {
		b.Fatal(err)
	}
	size, err := store.QueryStrings(ctx, h.s, `SELECT pg_size_pretty(pg_total_relation_size('certificates'))
		UNION ALL SELECT pg_size_pretty(pg_total_relation_size('artifacts'))`)
	if err != nil {
		b.Fatal(err)
	}
	h.summary = fmt.Sprintf("loaded %d certificates of %d workers (%d each, one every %s; %s with indexes) and %d artifacts (%s) in %s",
		rows, workers, perWorker, time.Duration(stepMicros)*time.Microsecond, size[0], rows/10, size[1], time.Since(start).Round(time.Second))
	return h
}

// compactPlan keeps a plan's node lines and index conditions, without
// cost estimates, at most 8: benchmark output is cut after 10 lines.
func compactPlan(plan []string) string {
	var out []string
	for i, l := range plan {
		keep := i == 0 || strings.Contains(l, "Execution Time") ||
			(strings.Contains(l, "->") || strings.Contains(l, "Index Cond")) && !strings.Contains(l, "crls")
		if keep {
			if j := strings.Index(l, "  (cost="); j >= 0 {
				if k := strings.Index(l[j:], ")"); k >= 0 {
					l = l[:j] + l[j+k+1:]
				}
			}
			out = append(out, l)
		}
	}
	if len(out) > 8 {
		out = append(out[:7], out[len(out)-1])
	}
	return strings.Join(out, "\n")
}

// reportLatencies reports the median and 99th percentile of lat.
func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkWorkerHistoryPostgres measures WorkerCertificates on a ledger
// of WORKERCA_BENCH_ROWS rows: "valid-at" asks what a random worker held
// at a random instant of the year, "page" reads a random worker's newest
// 100 rows, "next-page" the page after the first 5 rows. Each reports the
// median and 99th percentile latency, and logs one query's plan.
//
//	WORKERCA_BENCH_ROWS=10000000 go test -run '^$' -bench WorkerHistoryPostgres -timeout 2h ./store/
func BenchmarkWorkerHistoryPostgres(b *testing.B) {
	h := loadBenchHistory(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	query := func() store.WorkerQuery {
		return store.WorkerQuery{WorkerID: fmt.Sprintf("w%d", rng.IntN(h.workers))}
	}
	at := func() *time.Time {
		t := h.t0.Add(time.Duration(rng.Int64N(int64(benchYear))))
		return &t
	}
	for _, bc := range []struct {
		name string
		q    func() store.WorkerQuery
	}{
		{"valid-at", func() store.WorkerQuery { q := query(); q.ValidAt = at(); return q }},
		{"page", query},
		{"next-page", func() store.WorkerQuery {
			q := query()
			q.Limit = 5
			if _, next, err := h.s.WorkerCertificates(ctx, q); err == nil {
				q.After = next // "" (the first page again) for a worker of 5 rows or fewer
			}
			return q
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			plan, err := store.ExplainWorkerCertificates(ctx, h.s, bc.q(), "(ANALYZE, BUFFERS)")
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s; plan:\n%s", h.summary, compactPlan(plan))
			lat := make([]time.Duration, 0, 1<<16)
			found := 0
			for b.Loop() {
				b.StopTimer()
				q := bc.q()
				b.StartTimer()
				start := time.Now()
				certs, _, err := h.s.WorkerCertificates(ctx, q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				found += len(certs)
			}
			reportLatencies(b, lat)
			b.ReportMetric(float64(found)/float64(b.N), "rows/op")
		})
	}
}

// BenchmarkPrunePostgres measures Prune on a ledger of
// WORKERCA_BENCH_ROWS rows: each iteration adds (untimed) 10,000 expired
// certificates and 1,000 expired artifact registrations, then prunes
// them in batches of DefaultPruneBatch, leaving the loaded rows, which
// are all retained. It reports rows deleted per second, and logs the
// plan of a certificates batch.
//
//	WORKERCA_BENCH_ROWS=10000000 go test -run '^$' -bench PrunePostgres -timeout 2h ./store/
func BenchmarkPrunePostgres(b *testing.B) {
	const certs, artifacts = 10000, 1000
	h := loadBenchHistory(b)
	ctx := context.Background()
	now := h.t0 // before every loaded row's retain_until
	var deleted int64
	var elapsed time.Duration
	iter := 0
	for b.Loop() {
		b.StopTimer()
		iter++
		err := store.ExecRaw(ctx, h.s, fmt.Sprintf(`INSERT INTO certificates (serial, worker_id, pool, not_before, not_after,
				der, issued_at, retain_until, crl_shard)
			SELECT md5('prune-%[1]d-' || i), 'w' || (i %% %[2]d), 'pool-0', nb - interval '40 days', nb - interval '39 days',
				'\x3003020101'::bytea, nb - interval '40 days', nb - interval '1 hour', i %% 16
			FROM generate_series(1, %[3]d) AS i, (SELECT CAST(? AS timestamptz) AS nb) AS t`, iter, h.workers, certs), now)
		if err == nil {
			err = store.ExecRaw(ctx, h.s, fmt.Sprintf(`INSERT INTO artifacts (sig_sha256, sha256, serial, signature, receipt,
					registered_at, expires_at)
				SELECT md5('sig-%[1]d-' || i), md5('art-' || i), md5('prune-%[1]d-' || i), 'sig', 'receipt',
					nb - interval '40 days', nb - interval '1 hour'
				FROM generate_series(1, %[2]d) AS i, (SELECT CAST(? AS timestamptz) AS nb) AS t`, iter, artifacts), now)
		}
		if err != nil {
			b.Fatal(err)
		}
		if iter == 1 {
			plans, err := store.ExplainPrune(ctx, h.s, now, store.DefaultPruneBatch, "")
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s; certificates batch plan:\n%s", h.summary, compactPlan(plans[1]))
		}
		b.StartTimer()
		start := time.Now()
		res, err := h.s.Prune(ctx, store.PruneOptions{Now: now})
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if res.Certificates != certs || res.Artifacts != artifacts {
			b.Fatalf("Prune = %+v, want %d certificates and %d artifacts", res, certs, artifacts)
		}
		deleted += res.Certificates + res.Artifacts + res.Challenges
	}
	b.ReportMetric(float64(deleted)/elapsed.Seconds(), "rows/s")
}
