package store_test

import (
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func TestToken(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		tok := testToken("tok1", "p", now.In(time.FixedZone("x", 3600)).Add(789)) // normalized on write
		audit := store.AuditEvent{Actor: "cli", Action: "token.created", Target: "tok1", Detail: `{"pool":"p"}`}
		if err := s.CreateToken(ctx, tok, audit); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
		if !timeEq(tok.CreatedAt, now) {
			t.Errorf("CreatedAt not normalized in place: %v", tok.CreatedAt)
		}

		t.Run("ok/read-back", func(t *testing.T) {
			got, err := s.Token(ctx, "tok1")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tok.ID || got.SecretHash != tok.SecretHash || got.Pool != tok.Pool || got.WorkerID != tok.WorkerID ||
				got.CreatedBy != tok.CreatedBy || !timeEq(got.CreatedAt, now) || !timeEq(got.ExpiresAt, tok.ExpiresAt) ||
				got.UsedAt != nil || got.UsedSerial != "" {
				t.Errorf("Token = %+v, want %+v", got, tok)
			}
		})
		t.Run("ok/audit-recorded-at-created-at", func(t *testing.T) {
			ev, err := s.AuditEvents(ctx, 0)
			if err != nil || len(ev) != 1 {
				t.Fatalf("AuditEvents = %v, %v", ev, err)
			}
			if ev[0].Action != "token.created" || ev[0].Target != "tok1" || ev[0].Detail != audit.Detail || !timeEq(ev[0].At, now) {
				t.Errorf("audit = %+v", ev[0])
			}
		})
		t.Run("fail/duplicate-id", func(t *testing.T) {
			err := s.CreateToken(ctx, testToken("tok1", "q", now), store.AuditEvent{Action: "token.created"})
			checkErr(t, err, store.ErrDuplicate)
			if got, _ := s.Token(ctx, "tok1"); got == nil || got.Pool != "p" {
				t.Errorf("duplicate overwrote the token: %+v", got)
			}
			if ev, _ := s.AuditEvents(ctx, 0); len(ev) != 1 {
				t.Errorf("failed create wrote an audit event: %d events", len(ev))
			}
		})
		t.Run("fail/not-found", func(t *testing.T) {
			_, err := s.Token(ctx, "nope")
			checkErr(t, err, store.ErrNotFound)
		})
		t.Run("fail/empty-id", func(t *testing.T) {
			checkErr(t, s.CreateToken(ctx, testToken("", "p", now), store.AuditEvent{}), errAny)
		})
	})
}
