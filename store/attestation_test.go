package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func testChallenge(hash string, now time.Time) *store.Challenge {
	return &store.Challenge{NonceHash: hash, CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
}

// TestRecordIssuance_Challenge shows a challenge is consumed with the
// issuance, once, before it expires, and not at all when the issuance fails.
func TestRecordIssuance_Challenge(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		for _, h := range []string{"n-ok", "n-expired", "n-kept"} {
			if err := s.CreateChallenge(ctx, testChallenge(h, now)); err != nil {
				t.Fatal(err)
			}
		}
		checkErr(t, s.CreateChallenge(ctx, testChallenge("n-ok", now)), store.ErrDuplicate)
		issue := func(serial, nonce string, at time.Time) error {
			return s.RecordIssuance(ctx, store.Issuance{Certificate: testCert(serial, "w-"+serial, "p", at), NonceHash: nonce, Now: at})
		}
		checkErr(t, issue("01", "n-ok", now), nil)
		checkErr(t, issue("02", "n-ok", now), store.ErrChallengeUsed)
		checkErr(t, issue("03", "n-unknown", now), store.ErrChallengeUnknown)
		checkErr(t, issue("04", "n-expired", now.Add(5*time.Minute)), store.ErrChallengeExpired)

		// A failing issuance (duplicate serial) leaves the challenge unused.
		checkErr(t, issue("01", "n-kept", now), store.ErrDuplicate)
		c, err := s.Challenge(ctx, "n-kept")
		if err != nil || c.UsedAt != nil {
			t.Fatalf("challenge after failed issuance = %+v, %v; want unused", c, err)
		}
		for _, serial := range []string{"02", "03", "04"} {
			if _, err := s.Certificate(ctx, serial); err == nil {
				t.Errorf("certificate %s recorded despite the refused challenge", serial)
			}
		}
		c, err = s.Challenge(ctx, "n-ok")
		if err != nil || c.UsedAt == nil || !timeEq(*c.UsedAt, now.Truncate(time.Microsecond)) {
			t.Fatalf("consumed challenge = %+v, %v; want used at %v", c, err, now)
		}
	})
}

// TestRecordIssuance_UseKeys shows single-use evidence keys are refused the
// second time, and that a refused issuance records none of its keys.
func TestRecordIssuance_UseKeys(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		issue := func(serial string, keys ...string) error {
			return s.RecordIssuance(ctx, store.Issuance{Certificate: testCert(serial, "w", "p", now), UseKeys: keys, Now: now})
		}
		checkErr(t, issue("01", "doc:a", "instance:a"), nil)
		checkErr(t, issue("02", "doc:b", "instance:a"), store.ErrReplay)
		// doc:b was part of the refused issuance: it is still unused.
		used, err := s.AttestationUsed(ctx, "doc:b")
		if err != nil || used {
			t.Fatalf("AttestationUsed(doc:b) = %v, %v; want false", used, err)
		}
		checkErr(t, issue("03", "doc:b"), nil)
		checkErr(t, issue("04", ""), errAny)
	})
}

// TestRecordIssuance_UseKeyUnderConcurrency: of concurrent issuances with
// the same evidence, exactly one is recorded.
func TestRecordIssuance_UseKeyUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.RecordIssuance(ctx, store.Issuance{
					Certificate: testCert(fmt.Sprintf("%02x", i), "w", "p", now), UseKeys: []string{"gcp-iit:token:same"}, Now: now,
				})
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for _, err := range errs {
			if err == nil {
				winners++
			} else {
				checkErr(t, err, store.ErrReplay)
			}
		}
		if winners != 1 {
			t.Fatalf("winners = %d, want 1", winners)
		}
	})
}

// TestRecordIssuance_ExclusiveSubject: one live certificate per attested
// subject; an expired or revoked one does not count.
func TestRecordIssuance_ExclusiveSubject(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		issue := func(serial string, at time.Time) error {
			c := testCert(serial, "i-1", "p", at)
			c.AttestationSubject = "aws:111122223333:i-1"
			return s.RecordIssuance(ctx, store.Issuance{Certificate: c, ExclusiveSubject: true, Now: at})
		}
		checkErr(t, issue("01", now), nil)
		checkErr(t, issue("02", now.Add(30*time.Minute)), store.ErrReplay)
		// testCert is valid for an hour: after that the subject is free.
		checkErr(t, issue("03", now.Add(time.Hour)), nil)

		concurrent := make([]error, 8)
		var wg sync.WaitGroup
		for i := range concurrent {
			wg.Go(func() { concurrent[i] = issue(fmt.Sprintf("1%d", i), now.Add(3*time.Hour)) })
		}
		wg.Wait()
		winners := 0
		for _, err := range concurrent {
			if err == nil {
				winners++
			} else {
				checkErr(t, err, store.ErrReplay)
			}
		}
		if winners != 1 {
			t.Fatalf("concurrent winners = %d, want 1", winners)
		}
		c := testCert("20", "i-1", "p", now)
		checkErr(t, s.RecordIssuance(ctx, store.Issuance{Certificate: c, ExclusiveSubject: true, Now: now}), nil) // other subject ("token:tok")
	})
}

// TestCertificate_AttestedAt: AttestedAt defaults to IssuedAt and is kept
// when set (a renewal carries its parent's).
func TestCertificate_AttestedAt(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		a := testCert("01", "w", "p", now)
		b := testCert("02", "w", "p", now)
		b.AttestedAt = now.Add(-48 * time.Hour)
		b.ParentSerial = "01"
		for _, c := range []*store.Certificate{a, b} {
			if err := s.RecordIssuance(ctx, store.Issuance{Certificate: c, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		for serial, want := range map[string]time.Time{"01": now, "02": now.Add(-48 * time.Hour)} {
			got, err := s.Certificate(ctx, serial)
			if err != nil || !timeEq(got.AttestedAt, want.Truncate(time.Microsecond)) {
				t.Errorf("%s: AttestedAt = %v, %v; want %v", serial, got.AttestedAt, err, want)
			}
		}
	})
}

// TestMigration2_BackfillsAttestedAt rolls a database back to schema 1
// with a certificate in it and reopens it: migration 2 applies and gives
// the existing row its issuance time as attestation time.
func TestMigration2_BackfillsAttestedAt(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, driver)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			now := epoch()
			if err := s.RecordIssuance(ctx, store.Issuance{Certificate: testCert("01", "w", "p", now), Now: now}); err != nil {
				t.Fatal(err)
			}
			for _, stmt := range []string{
				"DROP TABLE tpm_sessions", "DROP TABLE tpm_eks",
				"DROP TABLE artifacts", "DROP INDEX idx_certificates_retain_until",
				"DROP TABLE crls", "DROP INDEX idx_certificates_revoked", "ALTER TABLE certificates DROP COLUMN crl_shard",
				"DROP TABLE challenges", "DROP TABLE attestation_uses",
				"ALTER TABLE certificates DROP COLUMN attested_at", "DELETE FROM schema_migrations WHERE version >= 2",
			} {
				if err := store.ExecRaw(ctx, s, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = store.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("reopen at schema 1: %v", err)
			}
			defer s.Close()
			if v, err := s.SchemaVersion(ctx); err != nil || v != store.LatestVersion() {
				t.Fatalf("schema version = %d, %v; want %d", v, err, store.LatestVersion())
			}
			nulls, err := store.QueryStrings(ctx, s, "SELECT CAST(COUNT(*) AS TEXT) FROM certificates WHERE attested_at IS NULL")
			if err != nil || len(nulls) != 1 || nulls[0] != "0" {
				t.Fatalf("rows without attested_at after migration: %v, %v; want 0", nulls, err)
			}
			c, err := s.Certificate(ctx, "01")
			if err != nil || !timeEq(c.AttestedAt, c.IssuedAt) {
				t.Fatalf("migrated row: AttestedAt = %v, IssuedAt = %v, %v", c.AttestedAt, c.IssuedAt, err)
			}
			if err := s.CreateChallenge(ctx, testChallenge("n", now)); err != nil {
				t.Fatalf("challenges table after migration: %v", err)
			}
		})
	}
}
