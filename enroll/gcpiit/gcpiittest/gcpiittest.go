// Package gcpiittest stands in for Google in tests of the gcp-iit
// enrollment method. Nothing in it is fake: a Provider holds real RSA
// keys, mints real RS256 identity tokens shaped like Compute Engine's
// (format=full), and serves its JWK Set over real HTTPS
// (httptest.NewTLSServer), so tests exercise the production code paths.
//
//	p := gcpiittest.NewProvider(t)
//	v, _ := gcpiit.New(p.Config(clock))
//	tok := p.Token(t, gcpiittest.Claims{Audience: url + "/v1/enroll?nonce=" + nonce, IssuedAt: now})
//	id, err := v.Verify(ctx, gcpiit.Evidence{Token: tok}, gcpiit.Policy{Audience: ...})
//
// Claims left zero get the Default* values below. To test refusals,
// SignedToken signs wrongly on purpose (see Signing); to test caching,
// Rotate, SetDown, SetCacheControl and Fetches control and observe the
// key set server. For air-gapped configurations, WriteJWKSFile and
// WriteV1CertsFile write the key set to a file.
package gcpiittest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/workerca/workerca/enroll/gcpiit"
)

// Values used for Claims fields left zero.
const (
	DefaultIssuer        = "https://accounts.google.com"
	DefaultProjectID     = "workerca-test"
	DefaultProjectNumber = 123456789012
	DefaultZone          = "us-central1-a"
	DefaultInstanceID    = "4242424242424242424"
	DefaultInstanceName  = "worker-1"
	DefaultSubject       = "100000000000000000001"
	DefaultEmail         = "123456789012-compute@developer.gserviceaccount.com"
	// DefaultLifetime is exp − iat, as Google issues them.
	DefaultLifetime = time.Hour
	// DefaultInstanceAge is iat − instance_creation_timestamp.
	DefaultInstanceAge = 10 * time.Minute
	// DefaultCacheControl is the key set's Cache-Control, like Google's.
	DefaultCacheControl = "public, max-age=21600, must-revalidate, no-transform"
)

// Claims describes a token to mint. Zero fields take the Default values.
type Claims struct {
	// Audience is aud, e.g. "<ca-url>/v1/enroll?nonce=<nonce>".
	Audience string
	// Issuer is iss; "" means DefaultIssuer.
	Issuer string
	// Subject is sub; "" means DefaultSubject.
	Subject string
	// Email is email; "" means DefaultEmail.
	Email string
	// IssuedAt is iat; zero means the provider's clock.
	IssuedAt time.Time
	// Expiry is exp; zero means IssuedAt + DefaultLifetime.
	Expiry time.Time
	// ProjectID is google.compute_engine.project_id; "" means DefaultProjectID.
	ProjectID string
	// ProjectNumber is google.compute_engine.project_number; 0 means
	// DefaultProjectNumber.
	ProjectNumber int64
	// Zone is google.compute_engine.zone; "" means DefaultZone.
	Zone string
	// InstanceID is google.compute_engine.instance_id; "" means
	// DefaultInstanceID.
	InstanceID string
	// InstanceName is google.compute_engine.instance_name; "" means
	// DefaultInstanceName.
	InstanceName string
	// InstanceCreated is google.compute_engine.instance_creation_timestamp;
	// zero means IssuedAt − DefaultInstanceAge.
	InstanceCreated time.Time
	// Standard mints a format=standard token: no google claim at all.
	Standard bool
	// Extra is merged into the top-level claims last: it adds claims or
	// overrides the ones above; a nil value removes a claim.
	Extra map[string]any
}

// Signing says how SignedToken signs.
type Signing int

// Ways to sign a token.
const (
	// Valid is RS256 by the provider's current, published key.
	Valid Signing = iota
	// WrongKey is RS256 under the current kid by a key that is not
	// published: a bad signature.
	WrongKey
	// UnknownKid is RS256 by a key whose kid the key set never holds.
	UnknownKid
	// AlgNone is alg "none" with an empty signature.
	AlgNone
	// AlgHS256 is HS256 keyed with the current public key's PEM (the
	// classic RS256/HS256 confusion attack).
	AlgHS256
)

// Option configures a Provider.
type Option func(*Provider)

// WithClock sets the clock that fills zero IssuedAt and dates the
// certificates of WriteV1CertsFile. The default is time.Now.
func WithClock(clock func() time.Time) Option {
	return func(p *Provider) { p.clock = clock }
}

// Provider is a stand-in for Google: signing keys and an HTTPS server
// publishing them. It is safe for concurrent use.
type Provider struct {
	srv     *httptest.Server
	clock   func() time.Time
	fetches atomic.Int64

	mu           sync.Mutex
	keys         []signingKey // published; the last one signs
	foreign      *rsa.PrivateKey
	cacheControl string
	age          string
	down         bool
}

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// NewProvider generates a signing key and starts the HTTPS key set
// server, closed when the test ends.
func NewProvider(t testing.TB, opts ...Option) *Provider {
	t.Helper()
	p := &Provider{clock: time.Now, cacheControl: DefaultCacheControl}
	for _, o := range opts {
		o(p)
	}
	p.keys = []signingKey{newSigningKey(t)}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	// Tests that use a client without the server's certificate make
	// it log handshake errors; they are expected, not news.
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

func newSigningKey(t testing.TB) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("gcpiittest: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatalf("gcpiittest: %v", err)
	}
	sum := sha256.Sum256(der)
	return signingKey{kid: hex.EncodeToString(sum[:20]), key: k} // 40 hex digits, like Google's kids
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	down, cc, age := p.down, p.cacheControl, p.age
	body := p.jwksLocked()
	p.mu.Unlock()
	switch {
	case down:
		http.Error(w, "key set server down (gcpiittest)", http.StatusServiceUnavailable)
		return
	case r.Method != http.MethodGet:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	if age != "" {
		w.Header().Set("Age", age)
	}
	w.Write(body)
}

// JWKSURL is the HTTPS URL of the provider's key set.
func (p *Provider) JWKSURL() string { return p.srv.URL + "/oauth2/v3/certs" }

// Client is an HTTP client that trusts the provider's TLS certificate.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// Config is a gcpiit.Config that fetches the provider's key set.
func (p *Provider) Config(clock func() time.Time) gcpiit.Config {
	return gcpiit.Config{JWKSURL: p.JWKSURL(), HTTPClient: p.Client(), Clock: clock}
}

// KeyID is the kid of the key that signs now.
func (p *Provider) KeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[len(p.keys)-1].kid
}

// Rotate makes a new key current, keeps the previous one published (as
// Google does), unpublishes older ones, and returns the new kid.
func (p *Provider) Rotate(t testing.TB) string {
	t.Helper()
	k := newSigningKey(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = []signingKey{p.keys[len(p.keys)-1], k}
	return k.kid
}

// Fetches counts the requests the key set server has received.
func (p *Provider) Fetches() int { return int(p.fetches.Load()) }

// SetDown makes the key set server answer 503 (down) or serve again.
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// SetCacheControl sets the key set's Cache-Control header; "" sends none.
func (p *Provider) SetCacheControl(v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cacheControl = v
}

// SetAge sets the key set's Age header (RFC 9111 §5.1), as a cache in
// front of Google adds; 0 sends none.
func (p *Provider) SetAge(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.age = ""
	if d > 0 {
		p.age = strconv.FormatInt(int64(d/time.Second), 10)
	}
}

// JWKS is the published key set, as served.
func (p *Provider) JWKS() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksLocked()
}

func (p *Provider) jwksLocked() []byte {
	var set jose.JSONWebKeySet
	for _, k := range p.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic("gcpiittest: " + err.Error()) // cannot happen for RSA public keys
	}
	return b
}

// WriteJWKSFile writes the published key set to a file in t.TempDir()
// and returns its path, for gcpiit.Config.JWKSFile.
func (p *Provider) WriteJWKSFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "jwks.json", p.JWKS())
}

// WriteV1CertsFile writes the published keys in Google's v1 form, a JSON
// object mapping each kid to a self-signed PEM certificate, and returns
// its path.
func (p *Provider) WriteV1CertsFile(t testing.TB) string {
	t.Helper()
	p.mu.Lock()
	keys := append([]signingKey(nil), p.keys...)
	p.mu.Unlock()
	now := p.clock()
	out := map[string]string{}
	for i, k := range keys {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i) + 1),
			Subject:      pkix.Name{CommonName: "federated-signon.system.gserviceaccount.com"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(14 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.key.PublicKey, k.key)
		if err != nil {
			t.Fatalf("gcpiittest: %v", err)
		}
		out[k.kid] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("gcpiittest: %v", err)
	}
	return writeFile(t, "v1-certs.json", b)
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("gcpiittest: %v", err)
	}
	return path
}

// Token mints a valid token: RS256 by the current published key.
func (p *Provider) Token(t testing.TB, c Claims) string {
	t.Helper()
	return p.SignedToken(t, c, Valid)
}

// SignedToken mints a token for c signed as s says.
func (p *Provider) SignedToken(t testing.TB, c Claims, s Signing) string {
	t.Helper()
	payload, err := json.Marshal(p.claimsMap(c))
	if err != nil {
		t.Fatalf("gcpiittest: claims: %v", err)
	}
	p.mu.Lock()
	cur := p.keys[len(p.keys)-1]
	p.mu.Unlock()
	switch s {
	case Valid:
		return signRS256(t, cur.kid, cur.key, payload)
	case WrongKey:
		return signRS256(t, cur.kid, p.foreignKey(t), payload)
	case UnknownKid:
		return signRS256(t, "unknown-"+cur.kid, p.foreignKey(t), payload)
	case AlgNone:
		return compact(t, map[string]any{"alg": "none", "kid": cur.kid, "typ": "JWT"}, payload, func([]byte) []byte { return nil })
	case AlgHS256:
		der, err := x509.MarshalPKIXPublicKey(&cur.key.PublicKey)
		if err != nil {
			t.Fatalf("gcpiittest: %v", err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		return compact(t, map[string]any{"alg": "HS256", "kid": cur.kid, "typ": "JWT"}, payload, func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		})
	}
	t.Fatalf("gcpiittest: unknown Signing %d", s)
	return ""
}

// foreignKey is a key the provider never publishes, made on first use.
func (p *Provider) foreignKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.foreign == nil {
		p.foreign = newSigningKey(t).key
	}
	return p.foreign
}

// claimsMap is the token payload c describes, with defaults applied,
// laid out as Compute Engine lays it out.
func (p *Provider) claimsMap(c Claims) map[string]any {
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = p.clock()
	}
	exp := c.Expiry
	if exp.IsZero() {
		exp = iat.Add(DefaultLifetime)
	}
	created := c.InstanceCreated
	if created.IsZero() {
		created = iat.Add(-DefaultInstanceAge)
	}
	m := map[string]any{
		"iss":            or(c.Issuer, DefaultIssuer),
		"aud":            c.Audience,
		"azp":            or(c.Subject, DefaultSubject),
		"sub":            or(c.Subject, DefaultSubject),
		"email":          or(c.Email, DefaultEmail),
		"email_verified": true,
		"iat":            iat.Unix(),
		"exp":            exp.Unix(),
	}
	if !c.Standard {
		number := c.ProjectNumber
		if number == 0 {
			number = DefaultProjectNumber
		}
		m["google"] = map[string]any{"compute_engine": map[string]any{
			"instance_creation_timestamp": created.Unix(),
			"instance_id":                 or(c.InstanceID, DefaultInstanceID),
			"instance_name":               or(c.InstanceName, DefaultInstanceName),
			"project_id":                  or(c.ProjectID, DefaultProjectID),
			"project_number":              number,
			"zone":                        or(c.Zone, DefaultZone),
		}}
	}
	for k, v := range c.Extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// signRS256 signs payload as Google does: compact JWS, header
// {"alg":"RS256","kid":...,"typ":"JWT"}.
func signRS256(t testing.TB, kid string, key *rsa.PrivateKey, payload []byte) string {
	t.Helper()
	return compact(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"}, payload, func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatalf("gcpiittest: %v", err)
		}
		return sig
	})
}

func compact(t testing.TB, header map[string]any, payload []byte, sign func([]byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatalf("gcpiittest: %v", err)
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(payload)
	return in + "." + enc.EncodeToString(sign([]byte(in)))
}
