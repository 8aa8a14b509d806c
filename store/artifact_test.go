package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

const day = 24 * time.Hour

// testArtifact returns a registration of digest by serial at at, expiring
// ttl later.
func testArtifact(sig, digest, serial string, at time.Time, ttl time.Duration) *store.Artifact {
	return &store.Artifact{
		SigSHA256:    sig,
		SHA256:       digest,
		Name:         "build-" + digest + ".tar",
		Serial:       serial,
		WorkerID:     "w1",
		Pool:         "p",
		SPIFFEID:     "spiffe://example.org/worker/w1",
		Signature:    "eyJhbGciOiJFUzI1NiJ9..sig-" + sig,
		Receipt:      "eyJhbGciOiJFUzI1NiJ9.receipt-" + sig + ".ca",
		RegisteredAt: at,
		ExpiresAt:    at.Add(ttl),
	}
}

// issueCert records c at now, for setting up state.
func issueCert(t *testing.T, s *store.Store, c *store.Certificate, now time.Time) {
	t.Helper()
	if err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: c, Now: now}); err != nil {
		t.Fatalf("setup RecordIssuance(%s): %v", c.Serial, err)
	}
}

func register(t *testing.T, s *store.Store, a *store.Artifact) {
	t.Helper()
	if _, err := s.RegisterArtifact(ctxT(t), a, store.AuditEvent{}); err != nil {
		t.Fatalf("setup RegisterArtifact(%s): %v", a.SigSHA256, err)
	}
}

func countAudit(t *testing.T, s *store.Store, action string) int {
	t.Helper()
	events, err := s.AuditEvents(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Action == action {
			n++
		}
	}
	return n
}

func TestRegisterArtifact(t *testing.T) {
	t.Parallel()
	now := epoch()
	// Certificate "01" is retained until now+24h (testCert); "02" is
	// revoked.
	seed := func(t *testing.T, s *store.Store) {
		t.Helper()
		issueCert(t, s, testCert("01", "w1", "p", now), now)
		issueCert(t, s, testCert("02", "w1", "p", now), now)
		if _, err := s.Revoke(ctxT(t), store.Revocation{Serial: "02", Reason: 1, At: now, Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	first := testArtifact("s1", "d1", "01", now, 90*day)
	tests := []struct {
		name        string
		setup       func(t *testing.T, s *store.Store)
		art         *store.Artifact
		wantCreated bool
		wantErr     error
		// wantStored is the row the call must leave in *art and the table.
		wantStored *store.Artifact
		// wantRetain is certificate 01's RetainUntil afterwards.
		wantRetain time.Time
	}{
		{
			name:        "ok/created-raises-retention-to-expiry",
			art:         testArtifact("s1", "d1", "01", now, 90*day),
			wantCreated: true,
			wantStored:  first,
			wantRetain:  now.Add(90 * day),
		},
		{
			name:        "ok/created-never-lowers-retention",
			art:         testArtifact("s1", "d1", "01", now, time.Hour),
			wantCreated: true,
			wantStored:  testArtifact("s1", "d1", "01", now, time.Hour),
			wantRetain:  now.Add(day),
		},
		{
			name:       "ok/same-signature-again-returns-stored-receipt",
			setup:      func(t *testing.T, s *store.Store) { register(t, s, testArtifact("s1", "d1", "01", now, 90*day)) },
			art:        withReceipt(testArtifact("s1", "d1", "01", now.Add(time.Hour), 365*day), "other receipt"),
			wantStored: first,
			wantRetain: now.Add(90 * day),
		},
		{
			name: "ok/same-signature-after-revocation-returns-stored-receipt",
			setup: func(t *testing.T, s *store.Store) {
				register(t, s, testArtifact("s1", "d1", "01", now, 90*day))
				if _, err := s.Revoke(ctxT(t), store.Revocation{Serial: "01", Reason: 1, At: now.Add(time.Minute), Actor: "t"}); err != nil {
					t.Fatal(err)
				}
			},
			art:        testArtifact("s1", "d1", "01", now.Add(time.Hour), 90*day),
			wantStored: first,
			wantRetain: now.Add(90 * day),
		},
		{
			name:       "fail/unknown-certificate",
			art:        testArtifact("s1", "d1", "ff", now, 90*day),
			wantErr:    store.ErrNotFound,
			wantRetain: now.Add(day),
		},
		{
			name:       "fail/revoked-certificate",
			art:        testArtifact("s1", "d1", "02", now, 90*day),
			wantErr:    store.ErrRevoked,
			wantRetain: now.Add(day),
		},
		{
			name:       "fail/same-signature-other-digest",
			setup:      func(t *testing.T, s *store.Store) { register(t, s, testArtifact("s1", "d1", "01", now, 90*day)) },
			art:        testArtifact("s1", "d2", "01", now, 90*day),
			wantErr:    store.ErrDuplicate,
			wantRetain: now.Add(90 * day),
		},
		{
			name:       "fail/same-signature-other-certificate",
			setup:      func(t *testing.T, s *store.Store) { register(t, s, testArtifact("s1", "d1", "01", now, 90*day)) },
			art:        testArtifact("s1", "d1", "02", now, 90*day),
			wantErr:    store.ErrDuplicate,
			wantRetain: now.Add(90 * day),
		},
		{
			name:       "fail/no-receipt",
			art:        withReceipt(testArtifact("s1", "d1", "01", now, 90*day), ""),
			wantErr:    errAny,
			wantRetain: now.Add(day),
		},
		{
			name:       "fail/no-expiry",
			art:        withExpiry(testArtifact("s1", "d1", "01", now, 90*day), time.Time{}),
			wantErr:    errAny,
			wantRetain: now.Add(day),
		},
		{
			name:       "fail/no-signature-hash",
			art:        testArtifact("", "d1", "01", now, 90*day),
			wantErr:    errAny,
			wantRetain: now.Add(day),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				ctx := ctxT(t)
				seed(t, s)
				if tc.setup != nil {
					tc.setup(t, s)
				}
				before := countAudit(t, s, "artifact.registered")
				a := *tc.art
				created, err := s.RegisterArtifact(ctx, &a, store.AuditEvent{Actor: "worker:w1", Action: "artifact.registered", Target: a.SHA256})
				checkErr(t, err, tc.wantErr)
				if created != tc.wantCreated {
					t.Errorf("created = %v, want %v", created, tc.wantCreated)
				}
				if wantEvents := before + map[bool]int{true: 1}[tc.wantCreated]; countAudit(t, s, "artifact.registered") != wantEvents {
					t.Errorf("audit events = %d, want %d", countAudit(t, s, "artifact.registered"), wantEvents)
				}
				c, err := s.Certificate(ctx, "01")
				if err != nil {
					t.Fatal(err)
				}
				if !timeEq(c.RetainUntil, tc.wantRetain) {
					t.Errorf("RetainUntil = %v, want %v", c.RetainUntil, tc.wantRetain)
				}
				stored, err := s.Artifacts(ctx, tc.art.SHA256)
				if err != nil {
					t.Fatal(err)
				}
				if tc.wantStored == nil {
					if tc.wantErr != store.ErrDuplicate && len(stored) != 0 {
						t.Errorf("failed registration stored %+v", stored)
					}
					return
				}
				assertArtifactEqual(t, &a, tc.wantStored)
				if len(stored) != 1 {
					t.Fatalf("stored registrations = %+v, want one", stored)
				}
				assertArtifactEqual(t, &stored[0], tc.wantStored)
			})
		})
	}
}

func withReceipt(a *store.Artifact, receipt string) *store.Artifact {
	a.Receipt = receipt
	return a
}

func withExpiry(a *store.Artifact, expires time.Time) *store.Artifact {
	a.ExpiresAt = expires
	return a
}

func assertArtifactEqual(t *testing.T, got, want *store.Artifact) {
	t.Helper()
	if got.SigSHA256 != want.SigSHA256 || got.SHA256 != want.SHA256 || got.Name != want.Name ||
		got.Serial != want.Serial || got.WorkerID != want.WorkerID || got.Pool != want.Pool ||
		got.SPIFFEID != want.SPIFFEID || got.Signature != want.Signature || got.Receipt != want.Receipt ||
		!timeEq(got.RegisteredAt, want.RegisteredAt) || !timeEq(got.ExpiresAt, want.ExpiresAt) {
		t.Errorf("artifact = %+v\nwant %+v", got, want)
	}
}

// TestRegisterArtifact_ConcurrentSameSignature: of 16 concurrent
// registrations of one signature exactly one creates the row, and every
// caller gets its receipt back.
func TestRegisterArtifact_ConcurrentSameSignature(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		issueCert(t, s, testCert("01", "w1", "p", now), now)
		const n = 16
		arts := make([]store.Artifact, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			arts[i] = *withReceipt(testArtifact("s1", "d1", "01", now.Add(time.Duration(i)*time.Second), 90*day), "receipt-"+string(rune('a'+i)))
			wg.Go(func() {
				<-start
				created[i], errs[i] = s.RegisterArtifact(ctx, &arts[i], store.AuditEvent{Actor: "worker:w1", Action: "artifact.registered"})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if created[i] {
				if winner >= 0 {
					t.Fatalf("callers %d and %d both created the registration", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no caller created the registration")
		}
		want := withReceipt(testArtifact("s1", "d1", "01", now.Add(time.Duration(winner)*time.Second), 90*day), "receipt-"+string(rune('a'+winner)))
		for i := range n {
			assertArtifactEqual(t, &arts[i], want)
		}
		stored, err := s.Artifacts(ctx, "d1")
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored = %+v, %v; want one row", stored, err)
		}
		if got := countAudit(t, s, "artifact.registered"); got != 1 {
			t.Errorf("audit events = %d, want 1", got)
		}
	})
}

// TestRegisterArtifact_SerializesWithRevocation holds an uncommitted
// revocation of the signing certificate open on another PostgreSQL
// connection: the registration must wait for it, then fail with
// ErrRevoked if it commits and succeed if it rolls back. Had the
// registration read the row without locking it, it would have seen it
// unrevoked and committed after the revocation. (On SQLite write
// transactions are exclusive, so the race cannot arise.)
func TestRegisterArtifact_SerializesWithRevocation(t *testing.T) {
	t.Parallel()
	now := epoch()
	for _, tc := range []struct {
		name    string
		commit  bool
		wantErr error
	}{
		{"fail/revocation-committed-meanwhile", true, store.ErrRevoked},
		{"ok/revocation-rolled-back-meanwhile", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			cfg := storetest.Config(t, store.DriverPostgres)
			s := storetest.OpenConfig(t, cfg)
			issueCert(t, s, testCert("01", "w1", "p", now), now)
			end := holdUpdate(t, cfg, `UPDATE certificates SET revoked_at = $1, revocation_reason = 1 WHERE serial = '01'`, now)

			done := make(chan error, 1)
			go func() {
				_, err := s.RegisterArtifact(ctx, testArtifact("s1", "d1", "01", now, 90*day), store.AuditEvent{})
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("registration finished (err = %v) while the revocation was uncommitted; want it to wait", err)
			case <-time.After(300 * time.Millisecond):
			}
			end(tc.commit)
			checkErr(t, <-done, tc.wantErr)
		})
	}
}

// holdUpdate runs sql on a second PostgreSQL connection to cfg's
// database, in a transaction it leaves open: a concurrent writer holding
// the rows it changed until end commits (commit true) or rolls back. What
// is still open at the end of the test is rolled back.
func holdUpdate(t *testing.T, cfg store.Config, sql string, args ...any) (end func(commit bool)) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
	return func(commit bool) {
		t.Helper()
		end := tx.Rollback
		if commit {
			end = tx.Commit
		}
		if err := end(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestArtifacts(t *testing.T) {
	t.Parallel()
	now := epoch()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		issueCert(t, s, testCert("01", "w1", "p", now), now)
		issueCert(t, s, testCert("02", "w2", "p", now), now)
		// Registered out of time order, and one of another digest.
		regs := []*store.Artifact{
			testArtifact("s2", "d1", "02", now.Add(2*time.Hour), day),
			testArtifact("s1", "d1", "01", now.Add(time.Hour), day),
			testArtifact("s3", "d1", "01", now.Add(3*time.Hour), day),
			testArtifact("s9", "d9", "01", now, day),
		}
		for _, a := range regs {
			a.RegisteredAt = a.RegisteredAt.In(time.FixedZone("UTC+5", 5*3600))
			register(t, s, a)
		}
		for _, tc := range []struct {
			name   string
			digest string
			want   []*store.Artifact
		}{
			{"ok/oldest-first", "d1", []*store.Artifact{regs[1], regs[0], regs[2]}},
			{"ok/one-registration", "d9", []*store.Artifact{regs[3]}},
			{"ok/unknown-digest-is-empty-not-an-error", "d0", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Artifacts(ctx, tc.digest)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || len(got) != len(tc.want) {
					t.Fatalf("Artifacts = %#v, want %d rows (and never nil)", got, len(tc.want))
				}
				for i := range got {
					assertArtifactEqual(t, &got[i], tc.want[i])
				}
			})
		}
	})
}
