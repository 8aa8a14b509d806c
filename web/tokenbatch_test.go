package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// tokenBatchAnswer is the body of the batch form of POST /v1/admin/tokens.
type tokenBatchAnswer struct {
	Tokens []tokenAnswer `json:"tokens"`
}

// batchWorkerID is the form of the worker IDs the CA makes up for batch
// tokens.
var batchWorkerID = regexp.MustCompile(`^w-[0-9a-f]{20}$`)

// TestTokenBatch mints tokens with the batch form of POST
// /v1/admin/tokens on each ledger: count tokens, each bound to the pool
// and a worker ID of its own, all stored hashed and usable once; up to
// web.MaxTokenBatch in one call; and count null is the single form.
func TestTokenBatch(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		tests := []struct {
			name  string
			body  string
			count int
			ttl   time.Duration
		}{
			{"ok/one", `{"pool":"default","ttl":"30m","count":1}`, 1, 30 * time.Minute},
			{"ok/three-default-ttl", `{"pool":"default","count":3}`, 3, time.Hour},
			{"ok/capped-pool", `{"pool":"capped","ttl":"2h","count":2}`, 2, 2 * time.Hour},
			{"ok/maximum", fmt.Sprintf(`{"pool":"default","ttl":"1h","count":%d}`, web.MaxTokenBatch), web.MaxTokenBatch, time.Hour},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := f.do(t, request{method: http.MethodPost, path: "/v1/admin/tokens", auth: f.admin, contentType: "application/json", body: []byte(tc.body)})
				if r.status != http.StatusCreated {
					t.Fatalf("POST /v1/admin/tokens %s: %d %s", tc.body, r.status, r.body)
				}
				var a tokenBatchAnswer
				decode(t, r, &a)
				if len(a.Tokens) != tc.count {
					t.Fatalf("%d tokens, want %d", len(a.Tokens), tc.count)
				}
				pool := "default"
				if strings.Contains(tc.body, "capped") {
					pool = "capped"
				}
				seen := map[string]bool{}
				for _, tok := range a.Tokens {
					c, err := credential.Parse(credential.EnrollmentToken, tok.Token)
					if err != nil || c.ID != tok.ID {
						t.Fatalf("token %q (id %q) is not a wct_ token with its id: %v", tok.Token, tok.ID, err)
					}
					if tok.Pool != pool || !batchWorkerID.MatchString(tok.WorkerID) {
						t.Fatalf("token bound to %s/%s, want %s/w-<20 hex>", tok.Pool, tok.WorkerID, pool)
					}
					if want := catest.Epoch.Add(tc.ttl); !tok.ExpiresAt.Equal(want) || tok.ExpiresAt.Location() != time.UTC {
						t.Fatalf("expires_at %s, want %s UTC", tok.ExpiresAt, want)
					}
					if seen[tok.ID] || seen[tok.WorkerID] || seen[tok.Token] {
						t.Fatalf("token %+v repeats an id, worker ID or token of the batch", tok)
					}
					seen[tok.ID], seen[tok.WorkerID], seen[tok.Token] = true, true, true
				}
				if tc.count > 3 {
					return // the ledger rows of small batches suffice
				}
				for _, tok := range a.Tokens {
					row, err := st.Token(context.Background(), tok.ID)
					if err != nil {
						t.Fatalf("token %s not stored: %v", tok.ID, err)
					}
					c, _ := credential.Parse(credential.EnrollmentToken, tok.Token)
					if row.Pool != pool || row.WorkerID != tok.WorkerID || !c.Matches(row.SecretHash) || row.UsedAt != nil {
						t.Fatalf("ledger row %+v does not match token %+v", row, tok)
					}
				}
				// Each token enrolls its own worker, once.
				tok := a.Tokens[0]
				r = f.enroll(t, tok.Token, csrPEM(t, catest.Key(t, ca.KeyP256)))
				if r.status != http.StatusCreated {
					t.Fatalf("enroll with a batch token: %d %s", r.status, r.body)
				}
				leaf := parseChain(t, r.body)[0]
				if want := "spiffe://" + trustDomain + "/worker/" + pool + "/" + tok.WorkerID; leaf.Subject.CommonName != tok.WorkerID || len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
					t.Fatalf("leaf CN %q, URIs %v; want %s", leaf.Subject.CommonName, leaf.URIs, want)
				}
				wantError(t, f.enroll(t, tok.Token, csrPEM(t, catest.Key(t, ca.KeyP256))), http.StatusUnauthorized, "token_used")
			})
		}

		// count null is no count: the single form, unchanged.
		r := f.do(t, request{method: http.MethodPost, path: "/v1/admin/tokens", auth: f.admin, contentType: "application/json",
			body: []byte(`{"pool":"default","worker_id":"host-null","count":null}`)})
		if r.status != http.StatusCreated {
			t.Fatalf("count null: %d %s", r.status, r.body)
		}
		var single tokenAnswer
		decode(t, r, &single)
		if single.WorkerID != "host-null" || single.Pool != "default" {
			t.Fatalf("count null answered %+v, want the single form for host-null", single)
		}
	})
}

// TestTokenBatchRefusals sends bad batch requests and checks the exact
// status and error code, and that no token was stored.
func TestTokenBatchRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		tests := []struct {
			name   string
			body   string
			status int
			code   string
		}{
			{"fail/count-zero", `{"pool":"default","count":0}`, 400, "invalid_count"},
			{"fail/count-negative", `{"pool":"default","count":-3}`, 400, "invalid_count"},
			{"fail/count-negative-zero", `{"pool":"default","count":-0}`, 400, "invalid_count"},
			{"fail/count-over-cap", fmt.Sprintf(`{"pool":"default","count":%d}`, web.MaxTokenBatch+1), 400, "invalid_count"},
			{"fail/count-huge", `{"pool":"default","count":99999999999999999999999}`, 400, "invalid_count"},
			{"fail/count-fraction", `{"pool":"default","count":1.5}`, 400, "invalid_count"},
			{"fail/count-float-whole", `{"pool":"default","count":2.0}`, 400, "invalid_count"},
			{"fail/count-exponent", `{"pool":"default","count":1e2}`, 400, "invalid_count"},
			{"fail/count-string", `{"pool":"default","count":"5"}`, 400, "invalid_count"},
			{"fail/count-bool", `{"pool":"default","count":true}`, 400, "invalid_count"},
			{"fail/count-array", `{"pool":"default","count":[5]}`, 400, "invalid_count"},
			{"fail/count-with-worker-id", `{"pool":"default","worker_id":"host-01","count":2}`, 400, "worker_id_with_count"},
			{"fail/count-one-with-worker-id", `{"pool":"default","worker_id":"host-01","count":1}`, 400, "worker_id_with_count"},
			{"fail/count-unknown-pool", `{"pool":"nope","count":2}`, 400, "unknown_pool"},
			{"fail/count-ttl-over-max", `{"pool":"default","ttl":"169h","count":2}`, 400, "invalid_request"},
			{"fail/count-ttl-not-a-duration", `{"pool":"default","ttl":"soon","count":2}`, 400, "invalid_request"},
			{"fail/count-not-json", `{"pool":"default","count":}`, 400, "invalid_json"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := tokensCreated(t, st)
				r := f.do(t, request{method: http.MethodPost, path: "/v1/admin/tokens", auth: f.admin, contentType: "application/json", body: []byte(tc.body)})
				wantError(t, r, tc.status, tc.code)
				if after := tokensCreated(t, st); after != before {
					t.Fatalf("the refusal stored %d tokens", after-before)
				}
			})
		}
		// The batch form needs the same scope as the single one.
		r := f.do(t, request{method: http.MethodPost, path: "/v1/admin/tokens", auth: f.apiKey(t, web.ScopeRead), contentType: "application/json",
			body: []byte(`{"pool":"default","count":2}`)})
		wantError(t, r, http.StatusForbidden, "insufficient_scope")
	})
}

// tokensCreated counts the token.created audit events.
func tokensCreated(t *testing.T, st *store.Store) int {
	t.Helper()
	events, err := st.AuditEvents(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Action == "token.created" {
			n++
		}
	}
	return n
}
