package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
)

// Scope is a permission an operator API key carries.
type Scope string

// The scopes of DESIGN.md "Interfaces". ScopeAdmin includes every other
// scope: an admin key can mint keys of any scope anyway.
const (
	ScopeAdmin        Scope = "admin"
	ScopeTokensCreate Scope = "tokens:create"
	ScopeRevoke       Scope = "revoke"
	ScopeRead         Scope = "read"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeAdmin, ScopeTokensCreate, ScopeRevoke, ScopeRead}

// access is a route's authorization rule.
type access struct {
	kind  accessKind
	scope Scope // for accessAPIKey
}

type accessKind int

const (
	// accessAnyone: no credential.
	accessAnyone accessKind = iota
	// accessAPIKey: an operator API key with the scope.
	accessAPIKey
	// accessToken: a one-time enrollment token, checked by the handler
	// through package enroll.
	accessToken
	// accessEvidence: attestation evidence in the body, checked by the
	// method's attestor through package enroll.
	accessEvidence
	// accessWorker: a worker certificate over mTLS, verified to our roots
	// and checked against the ledger. API keys are refused.
	accessWorker
	// accessReadOrSelf: an operator API key with scope read, or the
	// worker the route's :id names over mTLS (its own history only).
	accessReadOrSelf
)

func (a access) String() string {
	switch a.kind {
	case accessAPIKey:
		return "api-key:" + string(a.scope)
	case accessToken:
		return "enrollment-token"
	case accessEvidence:
		return "attestation-evidence"
	case accessWorker:
		return "worker-certificate"
	case accessReadOrSelf:
		return "api-key:" + string(ScopeRead) + "|worker-certificate:self"
	}
	return "anyone"
}

func anyone() access          { return access{kind: accessAnyone} }
func apiKey(sc Scope) access  { return access{kind: accessAPIKey, scope: sc} }
func enrollmentToken() access { return access{kind: accessToken} }
func evidence() access        { return access{kind: accessEvidence} }
func worker() access          { return access{kind: accessWorker} }
func readOrSelf() access      { return access{kind: accessReadOrSelf} }
func bearer(c echo.Context) string {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// keyReader is what authentication needs from the store.
type keyReader interface {
	APIKey(ctx context.Context, id string) (*store.APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

const ctxAPIKey = "workerca.apikey"

// lastUsedGranularity bounds how often a key's last_used_at is written.
const lastUsedGranularity = time.Minute

// requireAPIKey authenticates an operator key and checks its scope.
func (s *Server) requireAPIKey(sc Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			raw := bearer(c)
			if raw == "" {
				return newError(http.StatusUnauthorized, "unauthenticated", "an API key is required: Authorization: Bearer wca_...")
			}
			cred, err := credential.Parse(credential.APIKey, raw)
			if err != nil {
				return newError(http.StatusUnauthorized, "api_key_invalid", "the API key is not valid")
			}
			ctx := c.Request().Context()
			key, err := s.cfg.Store.APIKey(ctx, cred.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return newError(http.StatusUnauthorized, "api_key_invalid", "the API key is not valid")
			case err != nil:
				return fmt.Errorf("web: read api key: %w", storeError(err))
			}
			if !cred.Matches(key.SecretHash) {
				return newError(http.StatusUnauthorized, "api_key_invalid", "the API key is not valid")
			}
			now := s.cfg.Clock()
			if key.RevokedAt != nil {
				return newError(http.StatusUnauthorized, "api_key_revoked", "the API key was revoked")
			}
			if key.ExpiresAt != nil && !now.Before(*key.ExpiresAt) {
				return newError(http.StatusUnauthorized, "api_key_expired", "the API key has expired")
			}
			if !hasScope(key.Scopes, sc) {
				return newError(http.StatusForbidden, "insufficient_scope", fmt.Sprintf("the API key lacks scope %q", sc))
			}
			if key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) >= lastUsedGranularity {
				if err := s.cfg.Store.TouchAPIKey(ctx, key.ID, now); err != nil {
					s.log.WarnContext(ctx, "record api key use", "key_id", key.ID, "error", err)
				}
			}
			c.Set(ctxAPIKey, key)
			return next(c)
		}
	}
}

func hasScope(scopes string, want Scope) bool {
	have := strings.Fields(scopes)
	return slices.Contains(have, string(ScopeAdmin)) || slices.Contains(have, string(want))
}

func callerKey(c echo.Context) *store.APIKey {
	k, _ := c.Get(ctxAPIKey).(*store.APIKey)
	return k
}

func actor(c echo.Context) string {
	if k := callerKey(c); k != nil {
		return "apikey:" + k.ID
	}
	return "anonymous"
}
