package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// retainedCert returns a certificate valid from day0 to day0+1d and
// retained until day0+4d.
func retainedCert(serial string, shard *int, day0 time.Time) *store.Certificate {
	c := testCert(serial, "w-"+serial, "p", day0)
	c.NotBefore, c.NotAfter, c.RetainUntil = day0, day0.Add(day), day0.Add(4*day)
	c.CRLShard = shard
	return c
}

func prune(t *testing.T, s *store.Store, o store.PruneOptions) store.PruneResult {
	t.Helper()
	res, err := s.Prune(ctxT(t), o)
	if err != nil {
		t.Fatalf("Prune(%v): %v", o.Now, err)
	}
	return *res
}

func exists(t *testing.T, s *store.Store, serial string) bool {
	t.Helper()
	_, err := s.Certificate(ctxT(t), serial)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func countRows(t *testing.T, s *store.Store, table string) string {
	t.Helper()
	n, err := store.QueryStrings(ctxT(t), s, "SELECT CAST(COUNT(*) AS TEXT) FROM "+table)
	if err != nil || len(n) != 1 {
		t.Fatalf("count %s: %v, %v", table, n, err)
	}
	return n[0]
}

// TestPrune_WalksTimeForward: a certificate that signed an artifact
// expiring on day 90 outlives its own retention (day 4) until then; one
// that signed nothing goes after day 4.
func TestPrune_WalksTimeForward(t *testing.T) {
	t.Parallel()
	day0 := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		issueCert(t, s, retainedCert("01", nil, day0), day0)
		issueCert(t, s, retainedCert("02", nil, day0), day0)
		a := testArtifact("s1", "d1", "01", day0.Add(time.Hour), 0)
		a.ExpiresAt = day0.Add(90 * day)
		if created, err := s.RegisterArtifact(ctx, a, store.AuditEvent{}); err != nil || !created {
			t.Fatalf("RegisterArtifact = %v, %v", created, err)
		}
		if c, err := s.Certificate(ctx, "01"); err != nil || !timeEq(c.RetainUntil, day0.Add(90*day)) {
			t.Fatalf("RetainUntil after registration = %v, %v; want day 90", c.RetainUntil, err)
		}

		for _, step := range []struct {
			name      string
			at        time.Time
			want      store.PruneResult
			wantCerts []string // serials still in the ledger
			wantArts  int
		}{
			{"ok/day-3-keeps-both", day0.Add(3 * day), store.PruneResult{}, []string{"01", "02"}, 1},
			{"ok/day-4-exactly-keeps-both", day0.Add(4 * day), store.PruneResult{}, []string{"01", "02"}, 1},
			{"ok/day-30-deletes-the-one-without-artifact", day0.Add(30 * day), store.PruneResult{Certificates: 1, Batches: 1}, []string{"01"}, 1},
			{"ok/day-90-exactly-keeps-artifact-and-signer", day0.Add(90 * day), store.PruneResult{}, []string{"01"}, 1},
			{"ok/day-90-plus-1h-deletes-artifact-and-signer", day0.Add(90*day + time.Hour), store.PruneResult{Certificates: 1, Artifacts: 1, Batches: 2}, nil, 0},
		} {
			if got := prune(t, s, store.PruneOptions{Now: step.at}); got != step.want {
				t.Fatalf("%s: Prune = %+v, want %+v", step.name, got, step.want)
			}
			for _, serial := range []string{"01", "02"} {
				if want := strings.Contains(strings.Join(step.wantCerts, " "), serial); exists(t, s, serial) != want {
					t.Fatalf("%s: certificate %s in ledger = %v, want %v", step.name, serial, !want, want)
				}
			}
			if arts, err := s.Artifacts(ctx, "d1"); err != nil || len(arts) != step.wantArts {
				t.Fatalf("%s: artifacts = %d, %v; want %d", step.name, len(arts), err, step.wantArts)
			}
		}

		events, err := s.AuditEvents(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var details []string
		for _, e := range events {
			if e.Action == "ledger.pruned" {
				details = append(details, e.Detail)
				if e.Actor != "system" {
					t.Errorf("prune audit actor %q, want system", e.Actor)
				}
			}
		}
		want := []string{ // newest first
			`{"certificates":1,"artifacts":1,"challenges":0,"tpm_sessions":0,"batches":2}`,
			`{"certificates":1,"artifacts":0,"challenges":0,"tpm_sessions":0,"batches":1}`,
		}
		if strings.Join(details, "\n") != strings.Join(want, "\n") {
			t.Errorf("prune audit events = %q, want one per run that deleted: %q", details, want)
		}
	})
}

// TestPrune_RevokedCertificates: a revoked certificate past its retention
// stays until its shard's stored CRL was issued after both its notAfter
// and its revocation (RFC 5280 §3.3), and goes once a later CRL is saved.
func TestPrune_RevokedCertificates(t *testing.T) {
	t.Parallel()
	day0 := epoch()
	pruneAt := day0.Add(30 * day)
	shard := func(n int) *int { return &n }
	crl := func(shard int, thisUpdate time.Time) store.CRL {
		return store.CRL{Shard: shard, Number: thisUpdate.Unix(), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(day), DER: []byte{0x30, 0x00}}
	}
	notAfter := day0.Add(day)
	for _, tc := range []struct {
		name      string
		shard     *int
		revokedAt time.Time
		crls      []store.CRL
		wantKept  bool
	}{
		{"keep/no-crl-stored", shard(1), day0.Add(time.Hour), nil, true},
		{"keep/crl-before-not-after", shard(1), day0.Add(time.Hour), []store.CRL{crl(1, notAfter.Add(-time.Hour))}, true},
		{"keep/crl-exactly-at-not-after", shard(1), day0.Add(time.Hour), []store.CRL{crl(1, notAfter)}, true},
		{"keep/only-another-shard-crl-after-not-after", shard(1), day0.Add(time.Hour), []store.CRL{crl(0, notAfter.Add(day)), crl(1, notAfter.Add(-time.Hour))}, true},
		{"delete/crl-after-not-after", shard(1), day0.Add(time.Hour), []store.CRL{crl(1, notAfter.Add(time.Second))}, false},
		{"keep/revoked-after-expiry-and-after-the-crl", shard(1), day0.Add(3 * day), []store.CRL{crl(1, notAfter.Add(day))}, true},
		{"delete/revoked-after-expiry-and-listed-since", shard(1), day0.Add(3 * day), []store.CRL{crl(1, day0.Add(3*day+time.Hour))}, false},
		{"keep/shardless-no-crl-at-all", nil, day0.Add(time.Hour), nil, true},
		{"keep/shardless-one-crl-before-not-after", nil, day0.Add(time.Hour), []store.CRL{crl(0, notAfter.Add(day)), crl(1, notAfter.Add(-time.Hour))}, true},
		{"delete/shardless-every-crl-after-not-after", nil, day0.Add(time.Hour), []store.CRL{crl(0, notAfter.Add(day)), crl(1, notAfter.Add(time.Hour))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				ctx := ctxT(t)
				issueCert(t, s, retainedCert("01", tc.shard, day0), day0)
				issueCert(t, s, retainedCert("02", tc.shard, day0), day0) // never revoked
				if _, err := s.Revoke(ctx, store.Revocation{Serial: "01", Reason: 1, At: tc.revokedAt, Actor: "t"}); err != nil {
					t.Fatal(err)
				}
				for _, c := range tc.crls {
					if err := s.SaveCRL(ctx, &c); err != nil {
						t.Fatal(err)
					}
				}
				res := prune(t, s, store.PruneOptions{Now: pruneAt})
				if exists(t, s, "01") != tc.wantKept || exists(t, s, "02") {
					t.Fatalf("after Prune %+v: revoked kept = %v, want %v; unrevoked kept = %v, want false",
						res, exists(t, s, "01"), tc.wantKept, exists(t, s, "02"))
				}
				if !tc.wantKept {
					return
				}
				// A later CRL of every shard lists it: now it goes.
				for sh := range 2 {
					c := crl(sh, pruneAt.Add(-time.Hour))
					if err := s.SaveCRL(ctx, &c); err != nil {
						t.Fatal(err)
					}
				}
				if res := prune(t, s, store.PruneOptions{Now: pruneAt}); res.Certificates != 1 || exists(t, s, "01") {
					t.Fatalf("after a later CRL: Prune = %+v, certificate kept = %v; want it deleted", res, exists(t, s, "01"))
				}
			})
		})
	}
}

// TestPrune_KeepsSignerOfUnexpiredArtifact: even with its retention
// lowered behind RegisterArtifact's back, a certificate an unexpired
// registration relies on stays.
func TestPrune_KeepsSignerOfUnexpiredArtifact(t *testing.T) {
	t.Parallel()
	day0 := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		issueCert(t, s, retainedCert("01", nil, day0), day0)
		register(t, s, testArtifact("s1", "d1", "01", day0, 90*day))
		if err := store.ExecRaw(ctx, s, `UPDATE certificates SET retain_until = ? WHERE serial = '01'`, day0.Add(4*day)); err != nil {
			t.Fatal(err)
		}
		if res := prune(t, s, store.PruneOptions{Now: day0.Add(30 * day)}); res != (store.PruneResult{}) || !exists(t, s, "01") {
			t.Fatalf("Prune = %+v, certificate kept = %v; want nothing deleted", res, exists(t, s, "01"))
		}
		if res := prune(t, s, store.PruneOptions{Now: day0.Add(91 * day)}); res.Artifacts != 1 || res.Certificates != 1 {
			t.Fatalf("after the artifact expired: Prune = %+v, want both deleted", res)
		}
	})
}

// seedPrunable records n certificates past retention, m expired artifact
// registrations (signed by a certificate still retained) and k expired
// challenges (one of them used), plus one row of each that must stay. It
// returns the time to prune at.
func seedPrunable(t *testing.T, s *store.Store, n, m, k int) time.Time {
	t.Helper()
	ctx := ctxT(t)
	day0 := epoch()
	for i := range n {
		issueCert(t, s, retainedCert(fmt.Sprintf("%02x", i+1), nil, day0), day0)
	}
	keep := retainedCert("ff", nil, day0)
	keep.RetainUntil = day0.Add(365 * day)
	issueCert(t, s, keep, day0)
	for i := range m + 1 {
		ttl := day
		if i == m {
			ttl = 100 * day
		}
		register(t, s, testArtifact(fmt.Sprintf("s%d", i), "d1", "ff", day0, ttl))
	}
	for i := range k + 1 {
		c := testChallenge(fmt.Sprintf("n%d", i), day0)
		if i == k {
			c.ExpiresAt = day0.Add(100 * day)
		}
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if k > 0 {
		used := testCert("fe", "w-fe", "p", day0)
		used.RetainUntil = day0.Add(365 * day)
		if err := s.RecordIssuance(ctx, store.Issuance{Certificate: used, NonceHash: "n0", Now: day0}); err != nil {
			t.Fatal(err)
		}
	}
	return day0.Add(30 * day)
}

func TestPrune_Batches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		certs      int
		artifacts  int
		challenges int
		batchSize  int
		want       store.PruneResult
	}{
		{"ok/5-rows-in-batches-of-2-take-3", 5, 0, 0, 2, store.PruneResult{Certificates: 5, Batches: 3}},
		{"ok/4-rows-in-batches-of-2-take-2", 4, 0, 0, 2, store.PruneResult{Certificates: 4, Batches: 2}},
		{"ok/zero-batch-size-is-default", 5, 0, 0, 0, store.PruneResult{Certificates: 5, Batches: 1}},
		{"ok/every-table", 3, 3, 3, 2, store.PruneResult{Certificates: 3, Artifacts: 3, Challenges: 3, Batches: 6}},
		{"ok/nothing-to-delete", 0, 0, 0, 2, store.PruneResult{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				now := seedPrunable(t, s, tc.certs, tc.artifacts, tc.challenges)
				if got := prune(t, s, store.PruneOptions{Now: now, BatchSize: tc.batchSize}); got != tc.want {
					t.Fatalf("Prune = %+v, want %+v", got, tc.want)
				}
				for table, want := range map[string]string{"certificates": "2", "artifacts": "1", "challenges": "1"} {
					if table == "certificates" && tc.challenges == 0 {
						want = "1"
					}
					if got := countRows(t, s, table); got != want {
						t.Errorf("%s left: %s, want %s", table, got, want)
					}
				}
				wantEvents := 0
				if tc.want.Batches > 0 {
					wantEvents = 1
				}
				if got := countAudit(t, s, "ledger.pruned"); got != wantEvents {
					t.Errorf("prune audit events = %d, want %d", got, wantEvents)
				}
			})
		})
	}
}

// TestPrune_DryRunCountsAndDeletesNothing: a dry run predicts exactly
// what the real run then does.
func TestPrune_DryRunCountsAndDeletesNothing(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		now := seedPrunable(t, s, 5, 2, 3)
		want := store.PruneResult{Certificates: 5, Artifacts: 2, Challenges: 3, Batches: 3 + 1 + 2}
		before := []string{countRows(t, s, "certificates"), countRows(t, s, "artifacts"), countRows(t, s, "challenges")}
		if got := prune(t, s, store.PruneOptions{Now: now, BatchSize: 2, DryRun: true}); got != want {
			t.Fatalf("dry run = %+v, want %+v", got, want)
		}
		after := []string{countRows(t, s, "certificates"), countRows(t, s, "artifacts"), countRows(t, s, "challenges")}
		if strings.Join(before, " ") != strings.Join(after, " ") || countAudit(t, s, "ledger.pruned") != 0 {
			t.Fatalf("dry run changed rows %v -> %v or audited (%d events)", before, after, countAudit(t, s, "ledger.pruned"))
		}
		if got := prune(t, s, store.PruneOptions{Now: now, BatchSize: 2, Actor: "cli"}); got != want {
			t.Fatalf("real run = %+v, want what the dry run said, %+v", got, want)
		}
		events, err := s.AuditEvents(ctxT(t), 1)
		if err != nil || len(events) != 1 || events[0].Action != "ledger.pruned" || events[0].Actor != "cli" {
			t.Fatalf("last audit event = %+v, %v; want prune by cli", events, err)
		}
	})
}

func TestPrune_Fails(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		now := seedPrunable(t, s, 3, 0, 0)
		t.Run("fail/canceled-context-deletes-nothing", func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxT(t))
			cancel()
			res, err := s.Prune(ctx, store.PruneOptions{Now: now})
			checkErr(t, err, errAny)
			if !errors.Is(err, context.Canceled) || res == nil || *res != (store.PruneResult{}) {
				t.Fatalf("Prune = %+v, %v; want nothing done and context.Canceled", res, err)
			}
			if got := countRows(t, s, "certificates"); got != "4" {
				t.Fatalf("certificates left: %s, want 4", got)
			}
		})
		t.Run("fail/no-current-time", func(t *testing.T) {
			_, err := s.Prune(ctxT(t), store.PruneOptions{})
			checkErr(t, err, errAny)
		})
	})
}

// TestPrune_SkipsRowsOthersHold holds an uncommitted raise of a
// certificate's retention open on another PostgreSQL connection, as
// RegisterArtifact does, while Prune runs: Prune neither waits for the
// row nor deletes it, and deletes the rest. Once the raise commits the
// row stays; had it rolled back, the next run deletes it. (On SQLite write
// transactions are exclusive, so the race cannot arise.)
func TestPrune_SkipsRowsOthersHold(t *testing.T) {
	t.Parallel()
	day0 := epoch()
	for _, tc := range []struct {
		name     string
		commit   bool
		wantKept bool
	}{
		{"ok/raise-committed-row-stays", true, true},
		{"ok/raise-rolled-back-next-run-deletes", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, store.DriverPostgres)
			s := storetest.OpenConfig(t, cfg)
			issueCert(t, s, retainedCert("01", nil, day0), day0)
			issueCert(t, s, retainedCert("02", nil, day0), day0)
			end := holdUpdate(t, cfg, `UPDATE certificates SET retain_until = $1 WHERE serial = '01'`, day0.Add(90*day))

			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := s.Prune(pctx, store.PruneOptions{Now: day0.Add(30 * day)})
			if err != nil {
				t.Fatalf("Prune while a row is held: %v (did it wait for the row?)", err)
			}
			if res.Certificates != 1 || exists(t, s, "02") {
				t.Fatalf("Prune = %+v, 02 kept = %v; want the free row deleted", res, exists(t, s, "02"))
			}
			end(tc.commit)
			prune(t, s, store.PruneOptions{Now: day0.Add(30 * day)})
			if exists(t, s, "01") != tc.wantKept {
				t.Fatalf("after the next run: 01 kept = %v, want %v", !tc.wantKept, tc.wantKept)
			}
		})
	}
}

// TestPrune_SQLiteUsesIndexes: each batch finds its rows through the
// table's expiry index, not a scan. (The PostgreSQL plan at scale is
// logged by BenchmarkPrunePostgres.)
func TestPrune_SQLiteUsesIndexes(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.DriverSQLite)
	plans, err := store.ExplainPrune(ctxT(t), s, epoch(), 500, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"SEARCH artifacts USING INDEX idx_artifacts_expires_at (expires_at<?)",
		"SEARCH certificates USING INDEX idx_certificates_retain_until (retain_until<?)",
		"SEARCH challenges USING INDEX idx_challenges_expires_at (expires_at<?)",
	} {
		if p := strings.Join(plans[i], "\n"); !strings.Contains(p, want) || strings.Contains(p, "SCAN certificates") {
			t.Errorf("plan:\n%s\nwant %q and no scan of certificates", p, want)
		}
	}
}
