package gcpiit_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
)

// aud is the audience the CA asks workers to request, carrying the nonce.
const aud = "https://ca.example.com/v1/enroll?nonce=n0nce-AAAA"

func TestVerify(t *testing.T) {
	t.Parallel()
	p := gcpiittest.NewProvider(t)
	policy := gcpiit.Policy{Audience: aud}
	tests := []struct {
		name    string
		claims  gcpiittest.Claims // IssuedAt zero means epoch
		signing gcpiittest.Signing
		policy  func(*gcpiit.Policy)
		at      time.Duration // clock = epoch + at
		want    error
	}{
		{name: "ok/minimal"},
		{name: "ok/issuer-without-scheme", claims: gcpiittest.Claims{Issuer: "accounts.google.com"}},
		{name: "ok/project-allowed-by-id", policy: func(p *gcpiit.Policy) { p.Projects = []string{"other", gcpiittest.DefaultProjectID} }},
		{name: "ok/project-allowed-by-number", policy: func(p *gcpiit.Policy) { p.Projects = []string{"123456789012"} }},
		{name: "ok/exp-passed-within-leeway", at: gcpiittest.DefaultLifetime + gcpiit.Leeway - time.Second},
		{name: "ok/iat-in-future-within-leeway", claims: gcpiittest.Claims{IssuedAt: epoch.Add(gcpiit.Leeway)}},
		{name: "ok/instance-age-at-limit", policy: func(p *gcpiit.Policy) { p.MaxInstanceAge = gcpiittest.DefaultInstanceAge }},
		{name: "ok/no-age-limit-for-old-instance", claims: gcpiittest.Claims{InstanceCreated: epoch.AddDate(-3, 0, 0)}},

		{name: "fail/signature-wrong-key", signing: gcpiittest.WrongKey, want: gcpiit.ErrSignature},
		{name: "fail/kid-unknown", signing: gcpiittest.UnknownKid, want: gcpiit.ErrSignature},
		{name: "fail/alg-none", signing: gcpiittest.AlgNone, want: gcpiit.ErrSignature},
		{name: "fail/alg-hs256-keyed-with-public-key", signing: gcpiittest.AlgHS256, want: gcpiit.ErrSignature},
		{name: "fail/issuer-not-google", claims: gcpiittest.Claims{Issuer: "https://accounts.example.com"}, want: gcpiit.ErrIssuer},
		{name: "fail/issuer-google-http", claims: gcpiittest.Claims{Issuer: "http://accounts.google.com"}, want: gcpiit.ErrIssuer},
		{name: "fail/issuer-missing", claims: gcpiittest.Claims{Extra: map[string]any{"iss": nil}}, want: gcpiit.ErrIssuer},
		{name: "fail/aud-wrong-nonce", claims: gcpiittest.Claims{Audience: "https://ca.example.com/v1/enroll?nonce=n0nce-BBBB"}, want: gcpiit.ErrAudience},
		{name: "fail/aud-other-ca", claims: gcpiittest.Claims{Audience: "https://other.example.com/v1/enroll?nonce=n0nce-AAAA"}, want: gcpiit.ErrAudience},
		{name: "fail/aud-without-nonce", claims: gcpiittest.Claims{Audience: "https://ca.example.com/v1/enroll"}, want: gcpiit.ErrAudience},
		{name: "fail/aud-with-extra-suffix", claims: gcpiittest.Claims{Audience: aud + "&x=1"}, want: gcpiit.ErrAudience},
		{name: "fail/aud-array", claims: gcpiittest.Claims{Extra: map[string]any{"aud": []string{aud}}}, want: gcpiit.ErrAudience},
		{name: "fail/aud-missing", claims: gcpiittest.Claims{Extra: map[string]any{"aud": nil}}, want: gcpiit.ErrAudience},
		{name: "fail/expired", at: gcpiittest.DefaultLifetime + gcpiit.Leeway, want: gcpiit.ErrExpired},
		{name: "fail/expired-long-ago", at: 48 * time.Hour, want: gcpiit.ErrExpired},
		{name: "fail/iat-in-future", claims: gcpiittest.Claims{IssuedAt: epoch.Add(gcpiit.Leeway + time.Second)}, want: gcpiit.ErrExpired},
		{name: "fail/nbf-in-future", claims: gcpiittest.Claims{Extra: map[string]any{"nbf": epoch.Add(2 * time.Minute).Unix()}}, want: gcpiit.ErrExpired},
		{name: "fail/exp-missing", claims: gcpiittest.Claims{Extra: map[string]any{"exp": nil}}, want: gcpiit.ErrMalformed},
		{name: "fail/iat-a-string", claims: gcpiittest.Claims{Extra: map[string]any{"iat": "1700000000"}}, want: gcpiit.ErrMalformed},
		{name: "fail/project-not-allowed", policy: func(p *gcpiit.Policy) { p.Projects = []string{"prod-workers"} }, want: gcpiit.ErrProjectNotAllowed},
		{name: "fail/project-number-not-allowed", policy: func(p *gcpiit.Policy) { p.Projects = []string{"999999999999"} }, want: gcpiit.ErrProjectNotAllowed},
		{name: "fail/project-id-prefix-not-allowed", policy: func(p *gcpiit.Policy) { p.Projects = []string{"workerca"} }, want: gcpiit.ErrProjectNotAllowed},
		{name: "fail/instance-too-old", policy: func(p *gcpiit.Policy) { p.MaxInstanceAge = gcpiittest.DefaultInstanceAge - time.Second }, want: gcpiit.ErrInstanceTooOld},
		{name: "fail/no-compute-engine-claim", claims: gcpiittest.Claims{Standard: true}, want: gcpiit.ErrNotComputeEngine},
		{name: "fail/google-claim-without-compute-engine", claims: gcpiittest.Claims{Extra: map[string]any{"google": map[string]any{}}}, want: gcpiit.ErrNotComputeEngine},
		{name: "fail/instance-id-not-decimal", claims: gcpiittest.Claims{InstanceID: "../../admin"}, want: gcpiit.ErrMalformed},
		{name: "fail/instance-creation-missing", claims: gcpiittest.Claims{Extra: map[string]any{"google": map[string]any{"compute_engine": map[string]any{
			"instance_id": "1", "project_id": "p"}}}}, want: gcpiit.ErrMalformed},
		{name: "fail/policy-without-audience", policy: func(p *gcpiit.Policy) { p.Audience = "" }, want: errAny},
		{name: "fail/policy-negative-max-age", policy: func(p *gcpiit.Policy) { p.MaxInstanceAge = -time.Second }, want: errAny},
		{name: "fail/policy-empty-project", policy: func(p *gcpiit.Policy) { p.Projects = []string{""} }, want: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.claims
			if c.Audience == "" {
				c.Audience = aud
			}
			if c.IssuedAt.IsZero() {
				c.IssuedAt = epoch
			}
			pol := policy
			if tc.policy != nil {
				tc.policy(&pol)
			}
			tok := p.SignedToken(t, c, tc.signing)
			v, err := gcpiit.New(p.Config(fixed(epoch.Add(tc.at))))
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, pol)
			checkErr(t, err, tc.want)
			if err != nil {
				if id != nil {
					t.Errorf("identity %+v returned with error", id)
				}
				return
			}
			if id.InstanceID != gcpiittest.DefaultInstanceID || id.Audience != aud {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func TestVerify_Identity(t *testing.T) {
	t.Parallel()
	p := gcpiittest.NewProvider(t)
	created := epoch.Add(-30 * time.Second)
	tok := p.Token(t, gcpiittest.Claims{
		Audience: aud, IssuedAt: epoch, Expiry: epoch.Add(30 * time.Minute),
		ProjectID: "render-farm", ProjectNumber: 555000111222, Zone: "europe-west4-b",
		InstanceID: "8418160715288427941", InstanceName: "render-7", InstanceCreated: created,
		Subject: "106448564376038902066", Email: "render@render-farm.iam.gserviceaccount.com",
	})
	v, err := gcpiit.New(p.Config(fixed(epoch.Add(time.Minute))))
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), gcpiit.Evidence{Token: tok}, gcpiit.Policy{
		Audience: aud, Projects: []string{"render-farm"}, MaxInstanceAge: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	want := gcpiit.Identity{
		ProjectID: "render-farm", ProjectNumber: 555000111222, Zone: "europe-west4-b",
		InstanceID: "8418160715288427941", InstanceName: "render-7", InstanceCreated: created,
		Subject: "106448564376038902066", Email: "render@render-farm.iam.gserviceaccount.com",
		Audience: aud, IssuedAt: epoch, Expiry: epoch.Add(30 * time.Minute),
		TokenSHA256: hex.EncodeToString(sum[:]),
	}
	if *id != want {
		t.Errorf("identity =\n%+v\nwant\n%+v", *id, want)
	}
	for name, tm := range map[string]time.Time{"InstanceCreated": id.InstanceCreated, "IssuedAt": id.IssuedAt, "Expiry": id.Expiry} {
		if tm.Location() != time.UTC {
			t.Errorf("%s in %v, want UTC", name, tm.Location())
		}
	}
}

// TestVerify_TokenForm checks that only one spelling of a token is
// accepted, and that changing one byte anywhere breaks it.
func TestVerify_TokenForm(t *testing.T) {
	t.Parallel()
	p := gcpiittest.NewProvider(t)
	good := p.Token(t, gcpiittest.Claims{Audience: aud, IssuedAt: epoch})
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	randomSig := make([]byte, 256)
	rand.Read(randomSig)
	withHeader := func(h string) string { return enc([]byte(h)) + "." + parts[1] + "." + enc(randomSig) }
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"ok/canonical", good, nil},
		{"fail/payload-byte-changed", changeByte(t, good, 1), gcpiit.ErrSignature},
		{"fail/signature-byte-changed", changeByte(t, good, 2), gcpiit.ErrSignature},
		{"fail/header-byte-changed-kid-unknown", changeByte(t, good, 0), gcpiit.ErrSignature}, // the middle byte is in the kid
		{"fail/signature-byte-removed", parts[0] + "." + parts[1] + "." + enc(sig[:len(sig)-1]), gcpiit.ErrSignature},
		{"fail/signature-empty", parts[0] + "." + parts[1] + ".", gcpiit.ErrSignature},
		{"fail/signature-trailing-bit-set", respell(t, good, "trailing-bit"), gcpiit.ErrMalformed},
		{"fail/newline-in-signature", parts[0] + "." + parts[1] + "." + parts[2][:100] + "\n" + parts[2][100:], gcpiit.ErrMalformed},
		{"fail/newline-in-payload", respell(t, good, "newline"), gcpiit.ErrMalformed},
		{"fail/crlf-in-payload", parts[0] + "." + parts[1][:10] + "\r\n" + parts[1][10:] + "." + parts[2], gcpiit.ErrMalformed},
		{"fail/padded", good + "==", gcpiit.ErrMalformed},
		{"fail/standard-base64-alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good), gcpiit.ErrMalformed},
		{"fail/surrounding-space", " " + good + "\n", gcpiit.ErrMalformed},
		{"fail/empty", "", gcpiit.ErrMalformed},
		{"fail/two-parts", parts[0] + "." + parts[1], gcpiit.ErrMalformed},
		{"fail/four-parts", good + "." + parts[2], gcpiit.ErrMalformed},
		{"fail/jws-json-serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, gcpiit.ErrMalformed},
		{"fail/oversized", parts[0] + "." + strings.Repeat("A", 16<<10) + "." + parts[2], gcpiit.ErrMalformed},
		{"fail/header-not-json", withHeader("RS256"), gcpiit.ErrMalformed},
		{"fail/header-crit", withHeader(`{"alg":"RS256","kid":"` + p.KeyID() + `","crit":["b64"],"b64":false}`), gcpiit.ErrMalformed},
		{"fail/header-b64-false", withHeader(`{"alg":"RS256","kid":"` + p.KeyID() + `","b64":false}`), gcpiit.ErrMalformed},
		{"fail/header-no-kid", withHeader(`{"alg":"RS256","typ":"JWT"}`), gcpiit.ErrSignature},
		{"fail/header-alg-rs512", withHeader(`{"alg":"RS512","kid":"` + p.KeyID() + `"}`), gcpiit.ErrSignature},
		{"fail/header-alg-ps256", withHeader(`{"alg":"PS256","kid":"` + p.KeyID() + `"}`), gcpiit.ErrSignature},
		{"fail/header-alg-lowercase", withHeader(`{"alg":"rs256","kid":"` + p.KeyID() + `"}`), gcpiit.ErrSignature},
	}
	v, err := gcpiit.New(p.Config(fixed(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := v.Verify(context.Background(), gcpiit.Evidence{Token: tc.tok}, gcpiit.Policy{Audience: aud})
			checkErr(t, err, tc.want)
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  gcpiit.Config
		ok   bool
	}{
		{"ok/zero-config-uses-google", gcpiit.Config{}, true},
		{"ok/https-url", gcpiit.Config{JWKSURL: "https://keys.example.com/certs"}, true},
		{"ok/file-wins-over-url", gcpiit.Config{JWKSURL: "http://ignored", JWKSFile: writeTemp(t, validJWKS(t))}, true},
		{"fail/http-url", gcpiit.Config{JWKSURL: "http://www.googleapis.com/oauth2/v3/certs"}, false},
		{"fail/url-without-host", gcpiit.Config{JWKSURL: "https:///oauth2/v3/certs"}, false},
		{"fail/url-unparsable", gcpiit.Config{JWKSURL: "https://[::1"}, false},
		{"fail/file-missing", gcpiit.Config{JWKSFile: "/nonexistent/jwks.json"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := gcpiit.New(tc.cfg)
			if tc.ok != (err == nil) || (v == nil) == tc.ok {
				t.Fatalf("New(%+v) = %v, %v; want ok=%v", tc.cfg, v, err, tc.ok)
			}
			if err != nil {
				checkErr(t, err, errAny)
			}
		})
	}
}
