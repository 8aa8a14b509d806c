package store_test

import (
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		exp := now.Add(30 * 24 * time.Hour)
		keys := []*store.APIKey{
			{ID: "k3", SecretHash: "h3", Name: "third", Scopes: "read", CreatedAt: now.Add(time.Microsecond)},
			{ID: "k2", SecretHash: "h2", Name: "second", Scopes: "admin", CreatedAt: now},
			{ID: "k1", SecretHash: "h1", Name: "first", Scopes: "admin read", CreatedAt: now, ExpiresAt: &exp},
		}
		if n, err := s.CountAPIKeys(ctx); err != nil || n != 0 {
			t.Fatalf("CountAPIKeys on empty store = %d, %v", n, err)
		}
		for _, k := range keys {
			if err := s.CreateAPIKey(ctx, k, store.AuditEvent{Actor: "cli", Action: "apikey.created", Target: k.ID}); err != nil {
				t.Fatalf("CreateAPIKey(%s): %v", k.ID, err)
			}
		}

		t.Run("ok/get", func(t *testing.T) {
			got, err := s.APIKey(ctx, "k1")
			if err != nil {
				t.Fatal(err)
			}
			if got.SecretHash != "h1" || got.Name != "first" || got.Scopes != "admin read" || !timeEq(got.CreatedAt, now) ||
				!ptrTimeEq(got.ExpiresAt, &exp) || got.RevokedAt != nil || got.LastUsedAt != nil {
				t.Errorf("APIKey = %+v", got)
			}
		})
		t.Run("ok/list-ordered-by-created-at-then-id", func(t *testing.T) {
			list, err := s.ListAPIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range list {
				ids = append(ids, k.ID)
			}
			if len(ids) != 3 || ids[0] != "k1" || ids[1] != "k2" || ids[2] != "k3" {
				t.Errorf("ListAPIKeys ids = %v, want [k1 k2 k3]", ids)
			}
		})
		t.Run("ok/count", func(t *testing.T) {
			if n, err := s.CountAPIKeys(ctx); err != nil || n != 3 {
				t.Errorf("CountAPIKeys = %d, %v; want 3", n, err)
			}
		})
		t.Run("fail/duplicate-id", func(t *testing.T) {
			err := s.CreateAPIKey(ctx, &store.APIKey{ID: "k1", SecretHash: "x", CreatedAt: now}, store.AuditEvent{Action: "apikey.created"})
			checkErr(t, err, store.ErrDuplicate)
		})
		t.Run("fail/get-not-found", func(t *testing.T) {
			_, err := s.APIKey(ctx, "nope")
			checkErr(t, err, store.ErrNotFound)
		})
		t.Run("ok/touch", func(t *testing.T) {
			at := now.Add(time.Minute + 1500) // nanoseconds truncated
			if err := s.TouchAPIKey(ctx, "k2", at); err != nil {
				t.Fatal(err)
			}
			got, err := s.APIKey(ctx, "k2")
			if err != nil {
				t.Fatal(err)
			}
			if want := now.Add(time.Minute + time.Microsecond); !ptrTimeEq(got.LastUsedAt, &want) {
				t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, want)
			}
		})
		t.Run("fail/touch-not-found", func(t *testing.T) {
			checkErr(t, s.TouchAPIKey(ctx, "nope", now), store.ErrNotFound)
		})
		t.Run("ok/revoke-is-idempotent-and-keeps-first-time", func(t *testing.T) {
			first, second := now.Add(time.Hour), now.Add(2*time.Hour)
			if err := s.RevokeAPIKey(ctx, "k3", first, store.AuditEvent{Actor: "cli", Action: "apikey.revoked", Target: "k3"}); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeAPIKey(ctx, "k3", second, store.AuditEvent{Actor: "cli", Action: "apikey.revoked", Target: "k3"}); err != nil {
				t.Fatalf("second revoke: %v", err)
			}
			got, err := s.APIKey(ctx, "k3")
			if err != nil {
				t.Fatal(err)
			}
			if !ptrTimeEq(got.RevokedAt, &first) {
				t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, first)
			}
			ev, err := s.AuditEvents(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			revocations := 0
			for _, e := range ev {
				if e.Action == "apikey.revoked" {
					revocations++
					if !timeEq(e.At, first) {
						t.Errorf("revocation audit at %v, want %v", e.At, first)
					}
				}
			}
			if revocations != 1 {
				t.Errorf("revocation audit events = %d, want 1", revocations)
			}
		})
		t.Run("fail/revoke-not-found", func(t *testing.T) {
			checkErr(t, s.RevokeAPIKey(ctx, "nope", now, store.AuditEvent{Action: "apikey.revoked"}), store.ErrNotFound)
		})
	})
}
