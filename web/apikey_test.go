package web_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		ok := web.APIKeyRequest{Name: "ci", Scopes: []web.Scope{web.ScopeRead}, CreatedBy: "test", Now: catest.Epoch}
		tests := []struct {
			name   string
			change func(r *web.APIKeyRequest)
		}{
			{"fail/name-empty", func(r *web.APIKeyRequest) { r.Name = "" }},
			{"fail/name-over-100", func(r *web.APIKeyRequest) { r.Name = strings.Repeat("n", 101) }},
			{"fail/no-scopes", func(r *web.APIKeyRequest) { r.Scopes = nil }},
			{"fail/unknown-scope", func(r *web.APIKeyRequest) { r.Scopes = []web.Scope{web.ScopeRead, "superuser"} }},
			{"fail/ttl-negative", func(r *web.APIKeyRequest) { r.TTL = -time.Second }},
			{"fail/ttl-over-max", func(r *web.APIKeyRequest) { r.TTL = web.MaxAPIKeyTTL + time.Second }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := ok
				tc.change(&req)
				k, err := web.CreateAPIKey(ctx, st, req)
				var we *web.Error
				if !errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Code != "invalid_request" || k != nil {
					t.Fatalf("CreateAPIKey = %v, %v; want a 400 invalid_request *web.Error", k, err)
				}
			})
		}
		if n, err := st.CountAPIKeys(ctx); err != nil || n != 0 {
			t.Fatalf("refused requests stored %d keys (%v)", n, err)
		}

		req := ok
		req.Scopes = []web.Scope{web.ScopeRead, web.ScopeRevoke, web.ScopeRead}
		req.TTL = 90 * time.Minute
		k, err := web.CreateAPIKey(ctx, st, req)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := credential.Parse(credential.APIKey, k.Key)
		if err != nil || cred.ID != k.Row.ID {
			t.Fatalf("key %q does not parse as an API key of row %s: %v", k.Key, k.Row.ID, err)
		}
		row, err := st.APIKey(ctx, k.Row.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !cred.Matches(row.SecretHash) || strings.Contains(k.Key, row.SecretHash) || strings.Contains(row.SecretHash, strings.Split(k.Key, "_")[2]) {
			t.Fatal("stored hash does not match the key, or the secret is stored in the clear")
		}
		if row.Scopes != "read revoke" || row.Name != "ci" || !row.CreatedAt.Equal(catest.Epoch) ||
			row.ExpiresAt == nil || !row.ExpiresAt.Equal(catest.Epoch.Add(90*time.Minute)) || row.RevokedAt != nil {
			t.Fatalf("stored key %+v", row)
		}
		events, err := st.AuditEvents(ctx, 1)
		if err != nil || len(events) != 1 || events[0].Action != "apikey.created" || events[0].Target != row.ID || events[0].Actor != "test" {
			t.Fatalf("audit = %+v, %v; want apikey.created for %s", events, err, row.ID)
		}
	})
}

// apiKeyAnswer is an API key as the API shows it.
type apiKeyAnswer struct {
	ID         string     `json:"id"`
	Key        string     `json:"key"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// TestAPIKeysOverHTTPS creates, lists and revokes keys through the API:
// the secret is shown once, at creation, and never in a listing.
func TestAPIKeysOverHTTPS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		r := f.postJSON(t, "/v1/admin/api-keys", f.admin, map[string]any{"name": "reader", "scopes": []string{"read"}, "ttl": "720h"})
		if r.status != http.StatusCreated {
			t.Fatalf("POST /v1/admin/api-keys: %d %s", r.status, r.body)
		}
		var created apiKeyAnswer
		decode(t, r, &created)
		if !strings.HasPrefix(created.Key, "wca_"+created.ID+"_") || strings.HasSuffix(created.Key, "****") ||
			created.Name != "reader" || len(created.Scopes) != 1 || created.Scopes[0] != "read" ||
			!created.CreatedAt.Equal(catest.Epoch) || created.ExpiresAt == nil || !created.ExpiresAt.Equal(catest.Epoch.Add(720*time.Hour)) {
			t.Fatalf("created key %+v", created)
		}
		// The new key authenticates with its scope: an unknown serial is
		// a 404, not a 401 or 403.
		wantError(t, f.do(t, request{method: http.MethodGet, path: "/v1/admin/certificates/" + strings.Repeat("01", 20), auth: created.Key}), http.StatusNotFound, "not_found")

		r = f.do(t, request{method: http.MethodGet, path: "/v1/admin/api-keys", auth: f.admin})
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/admin/api-keys: %d %s", r.status, r.body)
		}
		var list struct {
			APIKeys []apiKeyAnswer `json:"api_keys"`
		}
		decode(t, r, &list)
		if len(list.APIKeys) != 2 {
			t.Fatalf("listed %d keys, want 2 (bootstrap admin and reader)", len(list.APIKeys))
		}
		for _, secret := range []string{f.admin, created.Key} {
			parts := strings.Split(secret, "_")
			if strings.Contains(string(r.body), parts[2]) {
				t.Fatalf("the listing contains a key's secret: %s", r.body)
			}
		}
		for _, k := range list.APIKeys {
			if k.Key != credential.Masked(credential.APIKey, k.ID) || !strings.HasSuffix(k.Key, "_****") {
				t.Errorf("key %s listed as %q, want it masked", k.ID, k.Key)
			}
			if k.LastUsedAt == nil || !k.LastUsedAt.Equal(catest.Epoch) {
				t.Errorf("key %s: last_used_at = %v, want %s (both keys were used)", k.ID, k.LastUsedAt, catest.Epoch)
			}
		}
		// Both keys were created at the same instant, so the listing
		// order between them is the order of their random IDs.
		i := slices.IndexFunc(list.APIKeys, func(k apiKeyAnswer) bool { return k.ID == created.ID })
		if i < 0 || list.APIKeys[i].Name != "reader" || list.APIKeys[i].RevokedAt != nil || !slices.Equal(list.APIKeys[i].Scopes, []string{"read"}) {
			t.Fatalf("listing %+v, want the reader key %s unrevoked", list.APIKeys, created.ID)
		}

		f.clock.Add(time.Minute)
		var revoked apiKeyAnswer
		for i := range 2 { // revoking twice keeps the first revocation
			r = f.do(t, request{method: http.MethodDelete, path: "/v1/admin/api-keys/" + created.ID, auth: f.admin})
			if r.status != http.StatusOK {
				t.Fatalf("DELETE /v1/admin/api-keys/%s (%d): %d %s", created.ID, i, r.status, r.body)
			}
			decode(t, r, &revoked)
			if revoked.ID != created.ID || revoked.Key != credential.Masked(credential.APIKey, created.ID) ||
				revoked.RevokedAt == nil || !revoked.RevokedAt.Equal(catest.Epoch.Add(time.Minute)) {
				t.Fatalf("revoked key %+v", revoked)
			}
			f.clock.Add(time.Minute)
		}
		wantError(t, f.do(t, request{method: http.MethodGet, path: "/v1/admin/certificates/" + strings.Repeat("01", 20), auth: created.Key}), http.StatusUnauthorized, "api_key_revoked")
	})
}
