package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func TestRecordIssuance(t *testing.T) {
	t.Parallel()
	now := epoch()
	revokedAt := now.Add(-time.Minute)

	// issue records a certificate directly, for setting up state.
	issue := func(t *testing.T, s *store.Store, c *store.Certificate) {
		t.Helper()
		if err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: c, Now: now}); err != nil {
			t.Fatalf("setup RecordIssuance(%s): %v", c.Serial, err)
		}
	}
	createToken := func(t *testing.T, s *store.Store, tok *store.EnrollmentToken) {
		t.Helper()
		if err := s.CreateToken(ctxT(t), tok, store.AuditEvent{}); err != nil {
			t.Fatalf("setup CreateToken: %v", err)
		}
	}

	tests := []struct {
		name    string
		setup   func(t *testing.T, s *store.Store)
		req     func() store.Issuance
		wantErr error // nil for success; errAny for a non-sentinel error
		// wantTokenUsed is checked for token "tok" when it exists.
		wantTokenUsed bool
	}{
		{
			name:  "ok/without-token",
			setup: func(*testing.T, *store.Store) {},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), Now: now,
					Audit: store.AuditEvent{Actor: "system", Action: "certificate.issued", Target: "01"}}
			},
		},
		{
			name:  "ok/token-consumed",
			setup: func(t *testing.T, s *store.Store) { createToken(t, s, testToken("tok", "p", now)) },
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now,
					Audit: store.AuditEvent{Actor: "token:tok", Action: "certificate.issued", Target: "01"}}
			},
			wantTokenUsed: true,
		},
		{
			name: "ok/token-expires-one-microsecond-later",
			setup: func(t *testing.T, s *store.Store) {
				tok := testToken("tok", "p", now.Add(-time.Hour))
				tok.ExpiresAt = now.Add(time.Microsecond)
				createToken(t, s, tok)
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now}
			},
			wantTokenUsed: true,
		},
		{
			name:  "fail/token-not-found",
			setup: func(*testing.T, *store.Store) {},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now}
			},
			wantErr: store.ErrNotFound,
		},
		{
			name: "fail/token-already-used",
			setup: func(t *testing.T, s *store.Store) {
				createToken(t, s, testToken("tok", "p", now))
				err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: testCert("00", "w1", "p", now), TokenID: "tok", Now: now})
				if err != nil {
					t.Fatalf("first use: %v", err)
				}
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now.Add(time.Second)}
			},
			wantErr:       store.ErrTokenUsed,
			wantTokenUsed: true,
		},
		{
			name: "fail/token-used-and-expired-reports-used",
			setup: func(t *testing.T, s *store.Store) {
				createToken(t, s, testToken("tok", "p", now))
				err := s.RecordIssuance(ctxT(t), store.Issuance{Certificate: testCert("00", "w1", "p", now), TokenID: "tok", Now: now})
				if err != nil {
					t.Fatalf("first use: %v", err)
				}
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now.Add(2 * time.Hour)}
			},
			wantErr:       store.ErrTokenUsed,
			wantTokenUsed: true,
		},
		{
			name: "fail/token-expired-at-now",
			setup: func(t *testing.T, s *store.Store) {
				tok := testToken("tok", "p", now.Add(-time.Hour))
				tok.ExpiresAt = now
				createToken(t, s, tok)
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now}
			},
			wantErr: store.ErrTokenExpired,
		},
		{
			name: "fail/token-expired-one-microsecond-ago",
			setup: func(t *testing.T, s *store.Store) {
				tok := testToken("tok", "p", now.Add(-time.Hour))
				tok.ExpiresAt = now.Add(-time.Microsecond)
				createToken(t, s, tok)
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now}
			},
			wantErr: store.ErrTokenExpired,
		},
		{
			name: "fail/duplicate-serial-leaves-token-unused",
			setup: func(t *testing.T, s *store.Store) {
				issue(t, s, testCert("01", "w0", "p", now))
				createToken(t, s, testToken("tok", "p", now))
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", Now: now,
					Audit: store.AuditEvent{Actor: "token:tok", Action: "certificate.issued"}}
			},
			wantErr: store.ErrDuplicate,
		},
		{
			name: "fail/pool-full-leaves-token-unused",
			setup: func(t *testing.T, s *store.Store) {
				issue(t, s, testCert("a1", "wa", "p", now))
				issue(t, s, testCert("b1", "wb", "p", now))
				createToken(t, s, testToken("tok", "p", now))
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), TokenID: "tok", MaxActiveWorkers: 2, Now: now,
					Audit: store.AuditEvent{Actor: "token:tok", Action: "certificate.issued"}}
			},
			wantErr: store.ErrPoolFull,
		},
		{
			name: "ok/pool-full-but-worker-already-active",
			setup: func(t *testing.T, s *store.Store) {
				issue(t, s, testCert("a1", "wa", "p", now))
				issue(t, s, testCert("b1", "wb", "p", now))
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("a2", "wa", "p", now), MaxActiveWorkers: 2, Now: now}
			},
		},
		{
			name: "ok/pool-cap-ignores-expired-revoked-and-other-pools",
			setup: func(t *testing.T, s *store.Store) {
				expired := testCert("a1", "wa", "p", now)
				expired.NotAfter = now // not_after > now is false
				issue(t, s, expired)
				revoked := testCert("b1", "wb", "p", now)
				revoked.RevokedAt = &revokedAt
				issue(t, s, revoked)
				issue(t, s, testCert("c1", "wc", "other", now))
				issue(t, s, testCert("d1", "wd", "p", now))
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), MaxActiveWorkers: 2, Now: now}
			},
		},
		{
			name: "fail/pool-cap-counts-distinct-workers",
			setup: func(t *testing.T, s *store.Store) {
				issue(t, s, testCert("a1", "wa", "p", now))
				issue(t, s, testCert("a2", "wa", "p", now))
				issue(t, s, testCert("b1", "wb", "p", now))
			},
			req: func() store.Issuance {
				return store.Issuance{Certificate: testCert("01", "w1", "p", now), MaxActiveWorkers: 2, Now: now}
			},
			wantErr: store.ErrPoolFull,
		},
		{
			name:  "fail/no-certificate",
			setup: func(*testing.T, *store.Store) {},
			req: func() store.Issuance {
				return store.Issuance{Now: now}
			},
			wantErr: errAny,
		},
		{
			name:  "fail/empty-der",
			setup: func(*testing.T, *store.Store) {},
			req: func() store.Issuance {
				c := testCert("01", "w1", "p", now)
				c.DER = nil
				return store.Issuance{Certificate: c, Now: now}
			},
			wantErr: errAny,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				t.Parallel()
				ctx := ctxT(t)
				tc.setup(t, s)
				auditBefore, err := s.AuditEvents(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				req := tc.req()
				err = s.RecordIssuance(ctx, req)
				checkErr(t, err, tc.wantErr)

				if req.Certificate != nil && req.Certificate.Serial != "" {
					got, cerr := s.Certificate(ctx, req.Certificate.Serial)
					switch {
					case tc.wantErr == nil && cerr != nil:
						t.Errorf("certificate not recorded: %v", cerr)
					case tc.wantErr == nil:
						assertCertEqual(t, got, req.Certificate)
					case tc.wantErr != store.ErrDuplicate && !errors.Is(cerr, store.ErrNotFound):
						t.Errorf("after failure Certificate() = %v, %v; want ErrNotFound", got, cerr)
					case tc.wantErr == store.ErrDuplicate && (cerr != nil || got.WorkerID == req.Certificate.WorkerID):
						t.Errorf("duplicate lost or overwrote the existing certificate: %v", cerr)
					}
				}

				if tok, err := s.Token(ctx, "tok"); err == nil {
					if used := tok.UsedAt != nil; used != tc.wantTokenUsed {
						t.Errorf("token used = %v, want %v", used, tc.wantTokenUsed)
					}
					if tc.wantErr == nil && tc.wantTokenUsed {
						if !tok.UsedAt.Equal(req.Now) || tok.UsedSerial != req.Certificate.Serial {
							t.Errorf("token used_at, used_serial = %v, %q; want %v, %q", tok.UsedAt, tok.UsedSerial, req.Now, req.Certificate.Serial)
						}
					}
				}

				auditAfter, err := s.AuditEvents(ctx, 0)
				if err != nil {
					t.Fatal(err)
				}
				wantNew := 0
				if tc.wantErr == nil && req.Audit.Action != "" {
					wantNew = 1
				}
				if got := len(auditAfter) - len(auditBefore); got != wantNew {
					t.Fatalf("audit events added = %d, want %d", got, wantNew)
				}
				if wantNew == 1 {
					e := auditAfter[0]
					if e.Action != req.Audit.Action || e.Actor != req.Audit.Actor || !e.At.Equal(req.Now) {
						t.Errorf("audit event = %+v, want action %q actor %q at %v", e, req.Audit.Action, req.Audit.Actor, req.Now)
					}
				}
			})
		})
	}
}

// TestRecordIssuance_TokenSingleUseUnderConcurrency is the single-use
// guarantee: of many concurrent issuances with one token exactly one wins.
func TestRecordIssuance_TokenSingleUseUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		if err := s.CreateToken(ctx, testToken("tok", "p", now), store.AuditEvent{}); err != nil {
			t.Fatal(err)
		}
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.RecordIssuance(ctx, store.Issuance{
					Certificate: testCert(fmt.Sprintf("%02x", i), fmt.Sprintf("w%d", i), "p", now),
					TokenID:     "tok",
					Now:         now,
					Audit:       store.AuditEvent{Actor: "token:tok", Action: "certificate.issued"},
				})
			})
		}
		close(start)
		wg.Wait()

		winners, issued := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, store.ErrTokenUsed):
				t.Errorf("caller %d: err = %v, want nil or ErrTokenUsed", i, err)
			}
			if _, err := s.Certificate(ctx, fmt.Sprintf("%02x", i)); err == nil {
				issued++
			}
		}
		if winners != 1 || issued != 1 {
			t.Errorf("winners = %d, certificates = %d; want exactly 1 each", winners, issued)
		}
		events, err := s.AuditEvents(ctx, 0)
		if err != nil || len(events) != 1 {
			t.Errorf("audit events = %d, %v; want 1", len(events), err)
		}
	})
}

// TestRecordIssuance_PoolCapUnderConcurrency shows the cap cannot be
// overshot by concurrent issuance to distinct workers.
func TestRecordIssuance_PoolCapUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		const n, limit = 10, 3
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.RecordIssuance(ctx, store.Issuance{
					Certificate:      testCert(fmt.Sprintf("%02x", i), fmt.Sprintf("w%d", i), "p", now),
					MaxActiveWorkers: limit,
					Now:              now,
				})
			})
		}
		close(start)
		wg.Wait()

		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrPoolFull):
				t.Errorf("caller %d: err = %v, want nil or ErrPoolFull", i, err)
			}
		}
		if ok != limit {
			t.Errorf("%d issuances succeeded, want %d", ok, limit)
		}
		if got, err := s.CountActiveWorkers(ctx, "p", now); err != nil || got != limit {
			t.Errorf("CountActiveWorkers = %d, %v; want %d", got, err, limit)
		}
	})
}

func TestCertificate(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		revoked := now.Add(time.Minute)
		invalid := now.Add(-time.Hour)
		reason := 1
		c := testCert("0a1b", "w1", "p", now)
		c.ParentSerial = "09"
		c.RevokedAt, c.RevocationReason, c.InvalidityDate = &revoked, &reason, &invalid
		want := *c
		if err := s.RecordIssuance(ctx, store.Issuance{Certificate: c, Now: now}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Certificate(ctx, "0a1b")
		if err != nil {
			t.Fatalf("Certificate: %v", err)
		}
		assertCertEqual(t, got, &want)

		t.Run("fail/not-found", func(t *testing.T) {
			_, err := s.Certificate(ctx, "ffff")
			checkErr(t, err, store.ErrNotFound)
		})
		t.Run("ok/nil-optional-fields", func(t *testing.T) {
			c := testCert("0b", "w2", "p", now)
			if err := s.RecordIssuance(ctx, store.Issuance{Certificate: c, Now: now}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Certificate(ctx, "0b")
			if err != nil {
				t.Fatal(err)
			}
			if got.RevokedAt != nil || got.RevocationReason != nil || got.InvalidityDate != nil || got.ParentSerial != "" {
				t.Errorf("optional fields = %v %v %v %q, want nil and empty", got.RevokedAt, got.RevocationReason, got.InvalidityDate, got.ParentSerial)
			}
		})
	})
}

func TestCountActiveWorkers(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		revokedAt := now
		certs := []*store.Certificate{
			testCert("01", "w1", "p", now),
			testCert("02", "w1", "p", now), // same worker twice
			testCert("03", "w2", "p", now),
			testCert("04", "w3", "other", now),
		}
		revoked := testCert("05", "w4", "p", now)
		revoked.RevokedAt = &revokedAt
		certs = append(certs, revoked)
		for _, c := range certs {
			if err := s.RecordIssuance(ctx, store.Issuance{Certificate: c, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			pool string
			at   time.Time
			want int
		}{
			{"ok/distinct-unrevoked-workers", "p", now, 2},
			{"ok/other-pool", "other", now, 1},
			{"ok/unknown-pool", "nope", now, 0},
			{"ok/one-microsecond-before-expiry", "p", now.Add(time.Hour - time.Microsecond), 2},
			{"ok/at-expiry", "p", now.Add(time.Hour), 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.CountActiveWorkers(ctx, tc.pool, tc.at)
				if err != nil || got != tc.want {
					t.Errorf("CountActiveWorkers(%q, %v) = %d, %v; want %d", tc.pool, tc.at, got, err, tc.want)
				}
			})
		}
	})
}
