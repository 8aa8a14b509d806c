package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestTPMEKs shows an EK is registered once, read back, listed by pool,
// and unregistered, each change with its audit event.
func TestTPMEKs(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		reg := func(hash, pool, worker string) error {
			return s.RegisterTPMEK(ctx, &store.TPMEK{EKSHA256: hash, Pool: pool, WorkerID: worker, CreatedBy: "op", CreatedAt: now},
				store.AuditEvent{Actor: "op", Action: "tpm_ek.registered", Target: hash})
		}
		checkErr(t, reg("aa", "metal", "rack1-a"), nil)
		checkErr(t, reg("bb", "metal", ""), nil)
		checkErr(t, reg("cc", "lab", ""), nil)
		checkErr(t, reg("aa", "lab", ""), store.ErrDuplicate)
		ek, err := s.TPMEK(ctx, "aa")
		if err != nil || ek.Pool != "metal" || ek.WorkerID != "rack1-a" || ek.CreatedBy != "op" || !timeEq(ek.CreatedAt, now) {
			t.Fatalf("TPMEK(aa) = %+v, %v", ek, err)
		}
		_, err = s.TPMEK(ctx, "zz")
		checkErr(t, err, store.ErrNotFound)
		list, err := s.TPMEKs(ctx, "metal")
		if err != nil || len(list) != 2 || list[0].EKSHA256 != "aa" || list[1].EKSHA256 != "bb" {
			t.Fatalf("TPMEKs(metal) = %+v, %v", list, err)
		}
		if all, err := s.TPMEKs(ctx, ""); err != nil || len(all) != 3 {
			t.Fatalf("TPMEKs() = %+v, %v; want 3", all, err)
		}
		checkErr(t, s.UnregisterTPMEK(ctx, "aa", store.AuditEvent{At: now, Actor: "op", Action: "tpm_ek.unregistered", Target: "aa"}), nil)
		checkErr(t, s.UnregisterTPMEK(ctx, "aa", store.AuditEvent{}), store.ErrNotFound)
		_, err = s.TPMEK(ctx, "aa")
		checkErr(t, err, store.ErrNotFound)
		events, err := s.AuditEvents(ctx, 0)
		var actions []string
		for _, e := range events {
			if e.Target == "aa" {
				actions = append(actions, e.Action)
			}
		}
		if err != nil || len(actions) != 2 || actions[0] != "tpm_ek.unregistered" || actions[1] != "tpm_ek.registered" {
			t.Fatalf("audit events for aa = %v, %v; want unregistered then registered (newest first)", actions, err)
		}
	})
}

// TestTPMSession shows a session is stored with its challenge, is
// consumed once by the issuance that finishes it, and can be burned.
func TestTPMSession(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		mk := func(hash string) *store.TPMSession {
			return &store.TPMSession{SessionHash: hash, SecretHash: "sec-" + hash, Pool: "metal", WorkerID: "ek-1", EKSHA256: "ek",
				AKName: "000b01", Evidence: `{"ek_sha256":"ek"}`, CSR: []byte{0x30, 0x00, 0xff}, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		}
		checkErr(t, s.CreateTPMSession(ctx, mk("s1")), nil)
		checkErr(t, s.CreateTPMSession(ctx, mk("s2")), nil)
		checkErr(t, s.CreateTPMSession(ctx, mk("s1")), store.ErrDuplicate)
		got, err := s.TPMSession(ctx, "s1")
		if err != nil || got.SecretHash != "sec-s1" || got.AKName != "000b01" || !bytes.Equal(got.CSR, []byte{0x30, 0x00, 0xff}) ||
			got.UsedAt != nil || !timeEq(got.ExpiresAt, now.Add(5*time.Minute)) {
			t.Fatalf("TPMSession(s1) = %+v, %v", got, err)
		}
		_, err = s.TPMSession(ctx, "nope")
		checkErr(t, err, store.ErrNotFound)

		// Finishing is an issuance that consumes the session's challenge.
		issue := func(serial, hash string) error {
			return s.RecordIssuance(ctx, store.Issuance{Certificate: testCert(serial, "ek-1", "metal", now), NonceHash: hash, Now: now})
		}
		checkErr(t, issue("01", "s1"), nil)
		checkErr(t, issue("02", "s1"), store.ErrChallengeUsed)
		if got, err := s.TPMSession(ctx, "s1"); err != nil || got.UsedAt == nil {
			t.Fatalf("finished session = %+v, %v; want used", got, err)
		}

		// A burned session cannot be finished.
		if ok, err := s.BurnChallenge(ctx, "s2", now); !ok || err != nil {
			t.Fatalf("BurnChallenge(s2) = %v, %v; want true", ok, err)
		}
		if ok, err := s.BurnChallenge(ctx, "s2", now); ok || err != nil {
			t.Fatalf("second BurnChallenge(s2) = %v, %v; want false", ok, err)
		}
		checkErr(t, issue("03", "s2"), store.ErrChallengeUsed)

		// Expired sessions are pruned with their challenges.
		res, err := s.Prune(ctx, store.PruneOptions{Now: now.Add(10 * time.Minute)})
		if err != nil || res.TPMSessions != 2 || res.Challenges != 2 {
			t.Fatalf("Prune = %+v, %v; want 2 sessions and 2 challenges", res, err)
		}
		_, err = s.TPMSession(ctx, "s2")
		checkErr(t, err, store.ErrNotFound)
	})
}
