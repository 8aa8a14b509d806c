package gcpiit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultJWKSURL is where Google publishes the keys that sign identity
// tokens, as a JWK Set.
const DefaultJWKSURL = "https://www.googleapis.com/oauth2/v3/certs"

// Leeway is the clock skew allowed when checking exp, iat and nbf.
const Leeway = time.Minute

// maxTokenBytes caps the token; Google's are 1–2 KB.
const maxTokenBytes = 16 << 10

// googleIssuer reports whether iss is one of the two values Google
// documents for its ID tokens
// (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).
func googleIssuer(iss string) bool {
	return iss == "https://accounts.google.com" || iss == "accounts.google.com"
}

// Evidence is what a worker sends for the gcp-iit method: the identity
// token its metadata server returned for
// .../instance/service-accounts/default/identity?audience=<aud>&format=full.
type Evidence struct {
	// Token is the compact JWS, exactly as the metadata server returned it.
	Token string `json:"token"`
}

// Config configures a Verifier. The zero value verifies against Google's
// published key set.
type Config struct {
	// JWKSURL is where the key set is fetched from (HTTPS only), as a
	// JWK Set or in Google's v1 {kid: PEM certificate} form. Empty means
	// DefaultJWKSURL. Ignored when JWKSFile is set.
	JWKSURL string
	// JWKSFile pins the key set for air-gapped sites: a file holding a
	// JWK Set or Google's v1 {kid: PEM certificate} object, read once by
	// New. Google rotates its keys every few weeks, so the file must be
	// refreshed (and the server restarted) as often.
	JWKSFile string
	// HTTPClient fetches JWKSURL. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Clock returns the current time. Nil means time.Now.
	Clock func() time.Time
}

// Policy is what a pool requires of an instance.
type Policy struct {
	// Audience is the exact aud the token must carry; the CA passes
	// "<public-url>/v1/enroll?nonce=<nonce>". Required.
	Audience string
	// Projects lists the allowed projects by project ID, or by project
	// number for entries that are all digits (project IDs start with a
	// letter). Empty allows any project.
	Projects []string
	// MaxInstanceAge refuses instances created longer ago than this, by
	// google.compute_engine.instance_creation_timestamp. Zero means no
	// limit.
	MaxInstanceAge time.Duration
}

// Validate reports whether p is usable; Verify refuses an invalid Policy
// with this error, which matches none of the package's sentinels.
func (p Policy) Validate() error {
	switch {
	case p.Audience == "":
		return errors.New("gcpiit: Policy.Audience is required")
	case p.MaxInstanceAge < 0:
		return errors.New("gcpiit: Policy.MaxInstanceAge is negative")
	case slices.Contains(p.Projects, ""):
		return errors.New("gcpiit: Policy.Projects holds an empty entry")
	}
	return nil
}

// Identity is what a verified token vouches for. Times are UTC.
type Identity struct {
	// ProjectID is google.compute_engine.project_id.
	ProjectID string
	// ProjectNumber is google.compute_engine.project_number.
	ProjectNumber int64
	// Zone is the instance's zone, e.g. "us-central1-a".
	Zone string
	// InstanceID is the instance's numeric ID (a decimal string); it is
	// the worker ID.
	InstanceID string
	// InstanceName is the instance's name in its project.
	InstanceName string
	// InstanceCreated is google.compute_engine.instance_creation_timestamp.
	InstanceCreated time.Time
	// Subject is sub: the unique ID of the instance's service account.
	Subject string
	// Email is the service account's email.
	Email string
	// Audience is aud, equal to Policy.Audience.
	Audience string
	// IssuedAt is iat.
	IssuedAt time.Time
	// Expiry is exp.
	Expiry time.Time
	// TokenSHA256 is the lowercase hex SHA-256 of the token's bytes, for
	// replay protection. Verify accepts only canonical base64url, so a
	// token cannot be re-encoded into a second form with a different
	// hash.
	TokenSHA256 string
}

// Verifier verifies Compute Engine instance identity tokens. It is safe
// for concurrent use.
type Verifier struct {
	keys  keySource
	clock func() time.Time
}

// New checks cfg and returns a Verifier. With JWKSFile it reads and
// checks the file now; otherwise the key set is fetched on first use.
func New(cfg Config) (*Verifier, error) {
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	if cfg.JWKSFile != "" {
		fs, err := loadKeySetFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("gcpiit: JWKSFile: %w", err)
		}
		return &Verifier{keys: fs, clock: clock}, nil
	}
	raw := cfg.JWKSURL
	if raw == "" {
		raw = DefaultJWKSURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("gcpiit: JWKSURL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("gcpiit: JWKSURL %q: want an https:// URL", raw)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Verifier{keys: newRemoteKeySet(u.String(), client, clock), clock: clock}, nil
}

// Verify checks ev's token against Google's key set and p, in this
// order: form, signature (RS256 only), iss, aud, exp/iat/nbf within
// Leeway, google.compute_engine present, project, instance age. A refusal
// wraps one of the package's sentinels; ErrKeysUnavailable means try
// again later.
func (v *Verifier) Verify(ctx context.Context, ev Evidence, p Policy) (*Identity, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	tok := ev.Token
	jws, err := parseToken(tok)
	if err != nil {
		return nil, err
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, fmt.Errorf("%w: the header has no kid", ErrSignature)
	}
	pub, err := v.keys.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %v", ErrSignature, kid, err)
	}
	c, err := decodeClaims(payload)
	if err != nil {
		return nil, err
	}
	if !googleIssuer(c.Issuer) {
		return nil, fmt.Errorf("%w: iss %q", ErrIssuer, c.Issuer)
	}
	aud, ok := c.audience()
	if !ok {
		if len(c.Audience) == 0 {
			return nil, fmt.Errorf("%w: no aud", ErrAudience)
		}
		return nil, fmt.Errorf("%w: aud %s is not a single string", ErrAudience, c.Audience)
	}
	if aud != p.Audience {
		return nil, fmt.Errorf("%w: aud %q, want %q", ErrAudience, aud, p.Audience)
	}
	now := v.clock()
	if err := checkTimes(c, now); err != nil {
		return nil, err
	}
	ce, err := c.computeEngine()
	if err != nil {
		return nil, err
	}
	if !projectAllowed(p.Projects, ce) {
		return nil, fmt.Errorf("%w: project %q (number %d) is not in %q", ErrProjectNotAllowed, ce.ProjectID, ce.ProjectNumber, p.Projects)
	}
	created := ce.InstanceCreationTimestamp.Time
	if age := now.Sub(created); p.MaxInstanceAge > 0 && age > p.MaxInstanceAge {
		return nil, fmt.Errorf("%w: instance %s created %s, %s ago (max %s)",
			ErrInstanceTooOld, ce.InstanceID, created.Format(time.RFC3339), age.Round(time.Second), p.MaxInstanceAge)
	}
	sum := sha256.Sum256([]byte(tok))
	return &Identity{
		ProjectID:       ce.ProjectID,
		ProjectNumber:   ce.ProjectNumber,
		Zone:            ce.Zone,
		InstanceID:      ce.InstanceID,
		InstanceName:    ce.InstanceName,
		InstanceCreated: created,
		Subject:         c.Subject,
		Email:           c.Email,
		Audience:        aud,
		IssuedAt:        c.IssuedAt.Time,
		Expiry:          c.Expiry.Time,
		TokenSHA256:     hex.EncodeToString(sum[:]),
	}, nil
}

// parseToken parses a compact JWS (RFC 7515 §7.1) signed with RS256. It
// first insists on canonical base64url in all three parts: go-jose (like
// encoding/base64) ignores line breaks and non-zero trailing bits, and
// recomputes the signing input from the decoded bytes, so without this
// check one token has many spellings and many TokenSHA256 values.
func parseToken(tok string) (*jose.JSONWebSignature, error) {
	if tok == "" {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(tok) > maxTokenBytes {
		return nil, fmt.Errorf("%w: token of %d bytes (max %d)", ErrMalformed, len(tok), maxTokenBytes)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: a compact JWS has 3 parts, this has %d", ErrMalformed, len(parts))
	}
	var header []byte
	for i, part := range parts {
		b, err := decodeCanonical(part)
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %v", ErrMalformed, i+1, err)
		}
		if i == 0 {
			header = b
		}
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, fmt.Errorf("%w: alg %q, want RS256", ErrSignature, algErr.Got)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// RFC 7797 "b64": false (and any "crit") changes how the signing
	// input is formed; Google never sends them.
	var h map[string]json.RawMessage
	if err := json.Unmarshal(header, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	for _, name := range []string{"crit", "b64"} {
		if _, ok := h[name]; ok {
			return nil, fmt.Errorf("%w: header parameter %q is not supported", ErrMalformed, name)
		}
	}
	return jws, nil
}

// decodeCanonical decodes s, which must be unpadded base64url in its one
// canonical spelling.
func decodeCanonical(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %#02x at %d is not base64url", c, i)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not canonical base64url: %v", err)
	}
	return b, nil
}

// checkTimes checks exp, iat and nbf against now with Leeway
// (RFC 7519 §4.1.4, §4.1.5, §4.1.6).
func checkTimes(c *claims, now time.Time) error {
	exp, iat := c.Expiry.Time, c.IssuedAt.Time
	if !now.Before(exp.Add(Leeway)) {
		return fmt.Errorf("%w: exp %s has passed (now %s)", ErrExpired, exp.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if iat.After(now.Add(Leeway)) {
		return fmt.Errorf("%w: iat %s is in the future (now %s)", ErrExpired, iat.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && c.NotBefore.After(now.Add(Leeway)) {
		return fmt.Errorf("%w: nbf %s is in the future (now %s)", ErrExpired, c.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// projectAllowed matches the instance's project against the allow-list:
// an all-digit entry is a project number, any other a project ID.
func projectAllowed(allowed []string, ce *computeEngine) bool {
	if len(allowed) == 0 {
		return true
	}
	number := strconv.FormatInt(ce.ProjectNumber, 10)
	for _, a := range allowed {
		if a == ce.ProjectID || (isDigits(a) && ce.ProjectNumber > 0 && a == number) {
			return true
		}
	}
	return false
}
