package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func serials(cs []store.Certificate) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	slices.Sort(out)
	return out
}

// seedRevocation records: w1 holds 01 (live) and 02 (expired an hour
// ago), w2 holds 03 (live, pool q, subject aws:i-1), 04 is shardless.
func seedRevocation(t *testing.T, s *store.Store, now time.Time) {
	t.Helper()
	shard := func(n int) *int { return &n }
	certs := []*store.Certificate{testCert("01", "w1", "p", now), testCert("02", "w1", "p", now), testCert("03", "w2", "q", now), testCert("04", "w3", "p", now)}
	certs[0].CRLShard, certs[1].CRLShard, certs[2].CRLShard = shard(1), shard(0), shard(1)
	certs[1].NotBefore, certs[1].NotAfter = now.Add(-3*time.Hour), now.Add(-time.Hour)
	certs[2].AttestationSubject = "aws:111122223333:i-1"
	for _, c := range certs {
		if err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: c, Now: now.Add(-2 * time.Hour)}); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	now := epoch()
	inv := now.Add(-2 * time.Hour)
	for _, tc := range []struct {
		name    string
		rev     store.Revocation
		want    []string
		wantErr error
	}{
		{"ok/serial", store.Revocation{Serial: "01", Reason: 1}, []string{"01"}, nil},
		{"ok/serial-of-expired", store.Revocation{Serial: "02", Reason: 4}, []string{"02"}, nil},
		{"ok/worker-skips-expired", store.Revocation{WorkerID: "w1", Reason: 1}, []string{"01"}, nil},
		{"ok/worker-key-compromised-before-expiry", store.Revocation{WorkerID: "w1", Reason: 1, InvalidityDate: &inv}, []string{"01", "02"}, nil},
		{"ok/pool", store.Revocation{Pool: "p", Reason: 5}, []string{"01", "04"}, nil},
		{"ok/attestation-subject", store.Revocation{AttestationSubject: "aws:111122223333:i-1", Reason: 1}, []string{"03"}, nil},
		{"ok/worker-without-certificates", store.Revocation{WorkerID: "nobody", Reason: 1}, []string{}, nil},
		{"fail/unknown-serial", store.Revocation{Serial: "ff", Reason: 1}, nil, store.ErrNotFound},
		{"fail/no-selector", store.Revocation{Reason: 1}, nil, errAny},
		{"fail/two-selectors", store.Revocation{Serial: "01", Pool: "p", Reason: 1}, nil, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				seedRevocation(t, s, now)
				rev := tc.rev
				rev.At, rev.Actor = now, "api-key:k1"
				res, err := s.Revoke(ctxT(t), rev)
				checkErr(t, err, tc.wantErr)
				if tc.wantErr != nil {
					return
				}
				if got := serials(res.Revoked); !slices.Equal(got, tc.want) || len(res.AlreadyRevoked) != 0 {
					t.Fatalf("revoked %v (already %v), want %v", got, serials(res.AlreadyRevoked), tc.want)
				}
				for _, c := range res.Revoked {
					row, err := s.Certificate(ctxT(t), c.Serial)
					if err != nil {
						t.Fatal(err)
					}
					if row.RevokedAt == nil || !row.RevokedAt.Equal(now) || row.RevocationReason == nil || *row.RevocationReason != tc.rev.Reason ||
						!ptrTimeEq(row.InvalidityDate, tc.rev.InvalidityDate) {
						t.Fatalf("row %s: revoked %v reason %v invalidity %v", c.Serial, row.RevokedAt, row.RevocationReason, row.InvalidityDate)
					}
				}
				events, err := s.AuditEvents(ctxT(t), 100)
				if err != nil {
					t.Fatal(err)
				}
				var audited []string
				for _, e := range events {
					if e.Action == "certificate.revoked" {
						audited = append(audited, e.Target)
						if e.Actor != "api-key:k1" {
							t.Errorf("audit actor %q", e.Actor)
						}
					}
				}
				slices.Sort(audited)
				if !slices.Equal(audited, tc.want) && len(tc.want)+len(audited) > 0 {
					t.Fatalf("audit events for %v, want %v", audited, tc.want)
				}

				// Again, later, with another reason: nothing changes.
				again := rev
				again.At, again.Reason = now.Add(time.Minute), 0
				res2, err := s.Revoke(ctxT(t), again)
				if err != nil {
					t.Fatal(err)
				}
				if len(res2.Revoked) != 0 || !slices.Equal(serials(res2.AlreadyRevoked), tc.want) {
					t.Fatalf("second revocation: revoked %v already %v, want none and %v", serials(res2.Revoked), serials(res2.AlreadyRevoked), tc.want)
				}
				for _, c := range res2.AlreadyRevoked {
					if !c.RevokedAt.Equal(now) || *c.RevocationReason != tc.rev.Reason {
						t.Fatalf("second revocation changed %s: %v %v", c.Serial, c.RevokedAt, *c.RevocationReason)
					}
				}
			})
		})
	}
}

// TestConcurrentRevokeClaimsEachOnce: parallel revocations of one pool
// revoke each certificate exactly once between them.
func TestConcurrentRevokeClaimsEachOnce(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		const n = 40
		for i := range n {
			c := testCert(fmt.Sprintf("%02x", i+1), fmt.Sprintf("w%d", i), "p", now)
			if err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: c, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total []string
		)
		for i := range 8 {
			wg.Go(func() {
				res, err := s.Revoke(ctxT(t), store.Revocation{Pool: "p", Reason: 1, At: now.Add(time.Duration(i) * time.Second), Actor: "t"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total = append(total, serials(res.Revoked)...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(total)
		if len(total) != n || len(slices.Compact(slices.Clone(total))) != n {
			t.Fatalf("%d revocations claimed between the callers (%d distinct), want each of %d once", len(total), len(slices.Compact(total)), n)
		}
	})
}

func TestEachRevoked(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		seedRevocation(t, s, now)
		for _, serial := range []string{"01", "02", "03", "04"} {
			if _, err := s.Revoke(ctxT(t), store.Revocation{Serial: serial, Reason: 1, At: now, Actor: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(shard int, from time.Time) []string {
			var got []string
			err := s.EachRevoked(ctxT(t), shard, from, func(e store.RevokedEntry) error {
				if !e.RevokedAt.Equal(now) || e.Reason == nil || *e.Reason != 1 || e.RevokedAt.Location() != time.UTC {
					t.Errorf("entry %+v", e)
				}
				got = append(got, e.Serial)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			return got
		}
		if got := list(1, time.Time{}); !slices.Equal(got, []string{"01", "03", "04"}) {
			t.Errorf("shard 1: %v, want 01 03 and the shardless 04", got)
		}
		if got := list(0, time.Time{}); !slices.Equal(got, []string{"02", "04"}) {
			t.Errorf("shard 0: %v, want 02 and the shardless 04", got)
		}
		if got := list(0, now); !slices.Equal(got, []string{"02", "04"}) {
			t.Errorf("shard 0 from now: %v, want 02 (expired, but revoked at now) and 04", got)
		}
		if got := list(0, now.Add(time.Second)); !slices.Equal(got, []string{"04"}) {
			t.Errorf("shard 0 from a second later: %v, want only 04 (02 expired and was revoked before)", got)
		}
	})
}

func TestSaveCRLNumbersOnlyGrow(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		save := func(shard int, number int64) error {
			return s.SaveCRL(ctxT(t), &store.CRL{Shard: shard, Number: number, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{byte(number)}})
		}
		checkErr(t, save(0, 10), nil)
		checkErr(t, save(1, 5), nil)
		checkErr(t, save(0, 11), nil)
		checkErr(t, save(0, 11), store.ErrStale)
		checkErr(t, save(0, 3), store.ErrStale)
		crls, err := s.CRLs(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(crls) != 2 || crls[0].Number != 11 || crls[0].DER[0] != 11 || crls[1].Number != 5 || !crls[0].ThisUpdate.Equal(now) {
			t.Fatalf("CRLs = %+v", crls)
		}
	})
}

// TestRevokedShards finds the shards with revocations at or after a time,
// and says when some of those certificates have no recorded shard.
func TestRevokedShards(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		now := epoch()
		seedRevocation(t, s, now)
		for _, r := range []store.Revocation{
			{Serial: "02", At: now.Add(-time.Hour)},               // shard 0
			{Serial: "01", At: now},                               // shard 1
			{AttestationSubject: "aws:111122223333:i-1", At: now}, // 03, shard 1
			{Serial: "04", At: now.Add(time.Hour)},                // no shard
		} {
			r.Actor = "test"
			if _, err := s.Revoke(ctxT(t), r); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name      string
			since     time.Time
			shards    []int
			unsharded bool
		}{
			{"ok/all", now.Add(-2 * time.Hour), []int{0, 1}, true},
			{"ok/since-is-inclusive", now, []int{1}, true},
			{"ok/only-shardless", now.Add(time.Second), nil, true},
			{"ok/none", now.Add(2 * time.Hour), nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				shards, unsharded, err := s.RevokedShards(ctxT(t), tc.since)
				checkErr(t, err, nil)
				if !slices.Equal(shards, tc.shards) || unsharded != tc.unsharded {
					t.Fatalf("RevokedShards(%v) = %v, %v; want %v, %v", tc.since, shards, unsharded, tc.shards, tc.unsharded)
				}
			})
		}
	})
}
