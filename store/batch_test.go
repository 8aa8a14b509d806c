package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// batchEntry is one issuance of a batch and the result it must get.
type batchEntry struct {
	name    string
	r       store.Issuance
	wantErr error
}

// mixedBatch sets up s and returns a batch in which every kind of
// refusal sits between issuances that must be recorded.
func mixedBatch(t *testing.T, s *store.Store, now time.Time, withDuplicate bool) []batchEntry {
	t.Helper()
	ctx := ctxT(t)
	for _, id := range []string{"t-ok1", "t-ok2", "t-twice", "t-used", "t-full"} {
		if err := s.CreateToken(ctx, testToken(id, "p", now), store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	expired := testToken("t-expired", "p", now.Add(-2*time.Hour))
	if err := s.CreateToken(ctx, expired, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"n-ok", "n-used"} {
		if err := s.CreateChallenge(ctx, testChallenge(h, now)); err != nil {
			t.Fatal(err)
		}
	}
	setup := []store.Issuance{
		{Certificate: testCert("e0", "w-e0", "p", now), TokenID: "t-used", Now: now},
		{Certificate: testCert("e1", "w-e1", "p", now), NonceHash: "n-used", Now: now},
		{Certificate: testCert("e2", "w-e2", "p", now), UseKeys: []string{"doc:used"}, Now: now},
		{Certificate: testCert("e3", "w-e3", "capped", now), Now: now},
		{Certificate: withSubject(testCert("e4", "w-e4", "p", now), "aws:i-held"), Now: now},
	}
	for _, r := range setup {
		if err := s.RecordIssuance(ctx, r); err != nil {
			t.Fatalf("setup %s: %v", r.Certificate.Serial, err)
		}
	}

	audit := func(serial string) store.AuditEvent {
		return store.AuditEvent{Actor: "test", Action: "certificate.issued", Target: serial}
	}
	entries := []batchEntry{
		{"ok/token", store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "t-ok1", Now: now, Audit: audit("01")}, nil},
		{"fail/token-used-before", store.Issuance{Certificate: testCert("02", "w2", "p", now), TokenID: "t-used", Now: now, Audit: audit("02")}, store.ErrTokenUsed},
		{"ok/token-twice-first", store.Issuance{Certificate: testCert("03", "w3", "p", now), TokenID: "t-twice", Now: now, Audit: audit("03")}, nil},
		{"fail/token-twice-second", store.Issuance{Certificate: testCert("04", "w4", "p", now), TokenID: "t-twice", Now: now, Audit: audit("04")}, store.ErrTokenUsed},
		{"fail/token-expired", store.Issuance{Certificate: testCert("05", "w5", "p", now), TokenID: "t-expired", Now: now}, store.ErrTokenExpired},
		{"fail/token-unknown", store.Issuance{Certificate: testCert("06", "w6", "p", now), TokenID: "t-none", Now: now}, store.ErrNotFound},
		{"ok/nonce", store.Issuance{Certificate: testCert("07", "w7", "p", now), NonceHash: "n-ok", Now: now, Audit: audit("07")}, nil},
		{"fail/nonce-used", store.Issuance{Certificate: testCert("08", "w8", "p", now), NonceHash: "n-used", Now: now}, store.ErrChallengeUsed},
		{"fail/use-key-replayed", store.Issuance{Certificate: testCert("09", "w9", "p", now), UseKeys: []string{"doc:new9", "doc:used"}, Now: now}, store.ErrReplay},
		{"ok/use-key", store.Issuance{Certificate: testCert("0a", "w10", "p", now), UseKeys: []string{"doc:new10"}, Now: now, Audit: audit("0a")}, nil},
		{"fail/use-key-twice-in-batch", store.Issuance{Certificate: testCert("0b", "w11", "p", now), UseKeys: []string{"doc:new10"}, Now: now}, store.ErrReplay},
		{"fail/pool-full-token-kept", store.Issuance{Certificate: testCert("0c", "w12", "capped", now), TokenID: "t-full", MaxActiveWorkers: 1, Now: now}, store.ErrPoolFull},
		{"fail/subject-held", store.Issuance{Certificate: withSubject(testCert("0d", "w13", "p", now), "aws:i-held"), ExclusiveSubject: true, Now: now}, store.ErrReplay},
		{"ok/subject-free", store.Issuance{Certificate: withSubject(testCert("0e", "w14", "p", now), "aws:i-new"), ExclusiveSubject: true, Now: now, Audit: audit("0e")}, nil},
		{"fail/subject-taken-in-batch", store.Issuance{Certificate: withSubject(testCert("0f", "w15", "p", now), "aws:i-new"), ExclusiveSubject: true, Now: now}, store.ErrReplay},
		{"ok/cap-first-in-batch", store.Issuance{Certificate: testCert("11", "w17", "cap-batch", now), MaxActiveWorkers: 1, Now: now, Audit: audit("11")}, nil},
		{"fail/cap-reached-by-batch-mate", store.Issuance{Certificate: testCert("12", "w18", "cap-batch", now), MaxActiveWorkers: 1, Now: now}, store.ErrPoolFull},
		{"ok/cap-same-worker-again", store.Issuance{Certificate: testCert("13", "w17", "cap-batch", now), MaxActiveWorkers: 1, Now: now}, nil},
		{"ok/token-last", store.Issuance{Certificate: testCert("10", "w16", "p", now), TokenID: "t-ok2", Now: now, Audit: audit("10")}, nil},
	}
	if withDuplicate {
		entries = append(entries, batchEntry{"fail/duplicate-serial",
			store.Issuance{Certificate: testCert("e0", "w-dup", "p", now), Now: now, Audit: audit("e0")}, store.ErrDuplicate})
	}
	return entries
}

func withSubject(c *store.Certificate, subject string) *store.Certificate {
	c.AttestationSubject = subject
	return c
}

// TestRecordBatch_RefusalsAreTheirOwn: in one transaction, each refused
// issuance gets its own error and leaves nothing behind, and every other
// issuance is recorded with its audit event. With a duplicate serial the
// bulk INSERT fails and the batch is written again one by one.
func TestRecordBatch_RefusalsAreTheirOwn(t *testing.T) {
	t.Parallel()
	for _, withDup := range []bool{false, true} {
		t.Run(fmt.Sprintf("duplicate-serial=%v", withDup), func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				ctx := ctxT(t)
				now := epoch()
				entries := mixedBatch(t, s, now, withDup)
				auditBefore, err := s.AuditEvents(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				rs := make([]store.Issuance, len(entries))
				for i, e := range entries {
					rs[i] = e.r
				}
				errs := store.RecordBatch(ctx, s, rs)

				wantAudits := 0
				for i, e := range entries {
					t.Run(e.name, func(t *testing.T) {
						checkErr(t, errs[i], e.wantErr)
						got, err := s.Certificate(ctx, e.r.Certificate.Serial)
						switch {
						case e.wantErr == nil && err != nil:
							t.Errorf("certificate not recorded: %v", err)
						case e.wantErr == nil:
							assertCertEqual(t, got, e.r.Certificate)
						case e.wantErr == store.ErrDuplicate:
							if err != nil || got.WorkerID == e.r.Certificate.WorkerID {
								t.Errorf("duplicate overwrote the existing certificate: %+v, %v", got, err)
							}
						case !errors.Is(err, store.ErrNotFound):
							t.Errorf("refused issuance recorded: %+v, %v", got, err)
						}
					})
					if e.wantErr == nil && e.r.Audit.Action != "" {
						wantAudits++
					}
				}
				tokens := map[string]bool{"t-ok1": true, "t-ok2": true, "t-twice": true, "t-used": true, "t-full": false, "t-expired": false}
				for id, wantUsed := range tokens {
					tok, err := s.Token(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if used := tok.UsedAt != nil; used != wantUsed {
						t.Errorf("token %s used = %v, want %v", id, used, wantUsed)
					}
				}
				for id, serial := range map[string]string{"t-ok1": "01", "t-twice": "03", "t-ok2": "10"} {
					tok, err := s.Token(ctx, id)
					if err != nil || tok.UsedSerial != serial || tok.UsedAt == nil || !timeEq(*tok.UsedAt, now.Truncate(time.Microsecond)) {
						t.Errorf("token %s = %+v, %v; want used at %v for %s", id, tok, err, now, serial)
					}
				}
				for key, want := range map[string]bool{"doc:new9": false, "doc:new10": true} {
					if used, err := s.AttestationUsed(ctx, key); err != nil || used != want {
						t.Errorf("AttestationUsed(%s) = %v, %v; want %v", key, used, err, want)
					}
				}
				auditAfter, err := s.AuditEvents(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(auditAfter) - len(auditBefore); got != wantAudits {
					t.Errorf("audit events added = %d, want %d", got, wantAudits)
				}
			})
		})
	}
}

// TestRecordBatch_DatabaseFailureFailsAll: when the transaction cannot
// be written, every issuance of the batch gets an error that is no
// refusal, and nothing of any of them is written.
func TestRecordBatch_DatabaseFailureFailsAll(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		for _, id := range []string{"t1", "t2", "t3"} {
			if err := s.CreateToken(ctx, testToken(id, "p", now), store.AuditEvent{}); err != nil {
				t.Fatal(err)
			}
		}
		// A real failure: the audit table is gone, so the batch's audit
		// INSERT fails after the tokens were consumed.
		if err := store.ExecRaw(ctx, s, "DROP TABLE audit_events"); err != nil {
			t.Fatal(err)
		}
		rs := []store.Issuance{
			{Certificate: testCert("01", "w1", "p", now), TokenID: "t1", Now: now,
				Audit: store.AuditEvent{Actor: "token:t1", Action: "certificate.issued"}},
			{Certificate: testCert("02", "w2", "p", now), TokenID: "t-unknown", Now: now},
			{Certificate: testCert("03", "w3", "p", now), TokenID: "t2", Now: now},
			{Certificate: testCert("04", "w4", "p", now), TokenID: "t3", Now: now,
				Audit: store.AuditEvent{Actor: "token:t3", Action: "certificate.issued"}},
		}
		errs := store.RecordBatch(ctx, s, rs)
		for i, err := range errs {
			checkErr(t, err, errAny)
			if _, err := s.Certificate(ctx, rs[i].Certificate.Serial); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("certificate %s after the failed batch: %v; want ErrNotFound", rs[i].Certificate.Serial, err)
			}
		}
		for _, id := range []string{"t1", "t2", "t3"} {
			if tok, err := s.Token(ctx, id); err != nil || tok.UsedAt != nil {
				t.Errorf("token %s after the failed batch = %+v, %v; want unused", id, tok, err)
			}
		}
	})
}

// TestRecordIssuance_GroupCommitUnderConcurrency: many concurrent callers
// (so that batches form) with good tokens, one token shared by several,
// and unknown tokens each get their own answer, and exactly the answered
// successes are in the ledger.
func TestRecordIssuance_GroupCommitUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		const good, shared, unknown = 48, 8, 8
		for i := range good {
			if err := s.CreateToken(ctx, testToken(fmt.Sprintf("t%02d", i), "p", now), store.AuditEvent{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateToken(ctx, testToken("shared", "p", now), store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		type call struct {
			token   string
			wantErr error // nil: must succeed; ErrTokenUsed: the shared token
		}
		var calls []call
		for i := range good {
			calls = append(calls, call{fmt.Sprintf("t%02d", i), nil})
		}
		for range shared {
			calls = append(calls, call{"shared", store.ErrTokenUsed})
		}
		for i := range unknown {
			calls = append(calls, call{fmt.Sprintf("none%d", i), store.ErrNotFound})
		}
		errs := make([]error, len(calls))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range calls {
			wg.Go(func() {
				<-start
				serial := fmt.Sprintf("%04x", i)
				errs[i] = s.RecordIssuance(ctx, store.Issuance{
					Certificate: testCert(serial, "w"+serial, "p", now), TokenID: c.token, Now: now,
					Audit: store.AuditEvent{Actor: "token:" + c.token, Action: "certificate.issued", Target: serial},
				})
			})
		}
		close(start)
		wg.Wait()

		sharedWins, recorded := 0, 0
		for i, c := range calls {
			err := errs[i]
			switch {
			case c.token == "shared" && err == nil:
				sharedWins++
			case c.token == "shared":
				checkErr(t, err, store.ErrTokenUsed)
			default:
				checkErr(t, err, c.wantErr)
			}
			_, cerr := s.Certificate(ctx, fmt.Sprintf("%04x", i))
			if (cerr == nil) != (err == nil) {
				t.Errorf("call %d (token %s): err = %v but certificate lookup = %v", i, c.token, err, cerr)
			}
			if cerr == nil {
				recorded++
			}
		}
		if sharedWins != 1 {
			t.Errorf("shared token won %d times, want 1", sharedWins)
		}
		events, err := s.AuditEvents(ctx, 0)
		if err != nil || len(events) != good+1 || recorded != good+1 {
			t.Errorf("audit events = %d (%v), certificates = %d; want %d each", len(events), err, recorded, good+1)
		}
	})
}

// TestRecordIssuance_CanceledBeforeWrite: a caller whose context has
// ended gets its error and nothing is written.
func TestRecordIssuance_CanceledBeforeWrite(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		now := epoch()
		if err := s.CreateToken(ctxT(t), testToken("tok", "p", now), store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(ctxT(t))
		cancel()
		err := s.RecordIssuance(ctx, store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RecordIssuance with a canceled context = %v, want context.Canceled", err)
		}
		if tok, err := s.Token(ctxT(t), "tok"); err != nil || tok.UsedAt != nil {
			t.Errorf("token = %+v, %v; want unused", tok, err)
		}
	})
}

// TestToken_ConcurrentLookups: concurrent Token calls (which share
// SELECTs) each get their own token, ErrNotFound for an unknown id, and
// copies they may change without affecting each other.
func TestToken_ConcurrentLookups(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		const n = 16
		for i := range n {
			if err := s.CreateToken(ctx, testToken(fmt.Sprintf("t%02d", i), "p", now), store.AuditEvent{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordIssuance(ctx, store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "t00", Now: now}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 4 * n {
			wg.Go(func() {
				<-start
				id := fmt.Sprintf("t%02d", i%n) // each id four times
				if i%5 == 0 {
					id = fmt.Sprintf("none%d", i)
				}
				tok, err := s.Token(ctx, id)
				if i%5 == 0 {
					checkErr(t, err, store.ErrNotFound)
					return
				}
				if err != nil {
					t.Errorf("Token(%s): %v", id, err)
					return
				}
				if tok.ID != id || tok.Pool != "p" || !timeEq(tok.ExpiresAt, now.Add(time.Hour).Truncate(time.Microsecond)) {
					t.Errorf("Token(%s) = %+v", id, tok)
				}
				if used := tok.UsedAt != nil; used != (id == "t00") {
					t.Errorf("Token(%s) used = %v", id, used)
				}
				tok.Pool = "changed by caller " + id // must not reach another caller's copy
			})
		}
		close(start)
		wg.Wait()
	})
}
