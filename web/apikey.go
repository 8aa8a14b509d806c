package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
)

// MaxAPIKeyTTL bounds an API key's lifetime when one is given.
const MaxAPIKeyTTL = 2 * 365 * 24 * time.Hour

// keyCreator stores a new key with its audit event.
type keyCreator interface {
	CreateAPIKey(ctx context.Context, k *store.APIKey, audit store.AuditEvent) error
}

// APIKeyRequest describes a new operator API key.
type APIKeyRequest struct {
	// Name is a label for people (1 to 100 characters).
	Name string
	// Scopes the key carries; at least one.
	Scopes []Scope
	// TTL until expiry; 0 means the key does not expire.
	TTL time.Duration
	// CreatedBy names the creator for the audit log.
	CreatedBy string
	// Now is the creation time.
	Now time.Time
	// Rand is the secret source; nil means crypto/rand.
	Rand io.Reader
}

// NewAPIKey is a created key. Key is the whole secret credential, shown
// once; only its hash is stored.
type NewAPIKey struct {
	Key string
	Row *store.APIKey
}

// CreateAPIKey validates req, mints a key and stores its hash. The CLI's
// bootstrap key and POST /v1/admin/api-keys both come through here.
func CreateAPIKey(ctx context.Context, st keyCreator, req APIKeyRequest) (*NewAPIKey, error) {
	if n := len(req.Name); n == 0 || n > 100 {
		return nil, newError(400, "invalid_request", "name must be 1 to 100 characters")
	}
	if len(req.Scopes) == 0 {
		return nil, newError(400, "invalid_request", "at least one scope is required")
	}
	var scopes []string
	for _, sc := range req.Scopes {
		if !slices.Contains(Scopes, sc) {
			return nil, newError(400, "invalid_request", fmt.Sprintf("unknown scope %q (known: admin, tokens:create, revoke, read)", sc))
		}
		if !slices.Contains(scopes, string(sc)) {
			scopes = append(scopes, string(sc))
		}
	}
	if req.TTL < 0 || req.TTL > MaxAPIKeyTTL {
		return nil, newError(400, "invalid_request", fmt.Sprintf("ttl must be between 0 (no expiry) and %s", MaxAPIKeyTTL))
	}
	r := req.Rand
	if r == nil {
		r = rand.Reader
	}
	cred, err := credential.New(credential.APIKey, r)
	if err != nil {
		return nil, err
	}
	now := req.Now.UTC()
	row := &store.APIKey{ID: cred.ID, SecretHash: cred.Hash(), Name: req.Name, Scopes: strings.Join(scopes, " "), CreatedAt: now}
	if req.TTL > 0 {
		exp := now.Add(req.TTL)
		row.ExpiresAt = &exp
	}
	detail, _ := json.Marshal(map[string]any{"name": row.Name, "scopes": scopes, "expires_at": row.ExpiresAt})
	if err := st.CreateAPIKey(ctx, row, store.AuditEvent{At: now, Actor: req.CreatedBy, Action: "apikey.created", Target: row.ID, Detail: string(detail)}); err != nil {
		return nil, fmt.Errorf("web: store api key: %w", storeError(err))
	}
	return &NewAPIKey{Key: cred.String(), Row: row}, nil
}
