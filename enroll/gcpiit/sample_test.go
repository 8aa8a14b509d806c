package gcpiit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/internal/sharedtestdata"
)

// sample is a real Compute Engine identity token from
// ../shared/testdata/attestation/gcp-iit (see each folder's SOURCE.txt)
// with the Google key set it verifies under, and what it vouches for.
type sample struct {
	token string // path under gcp-iit/
	keys  string // key set file, same folder
	want  gcpiit.Identity
}

func samples() []sample {
	return []sample{{
		token: "infisical-sdk-us-central1-2024/token.jwt",
		keys:  "google_jwks_subset.json",
		want: gcpiit.Identity{
			ProjectID: "infisical-dev", ProjectNumber: 741176294612, Zone: "us-central1-a",
			InstanceID: "8418160715288427941", InstanceName: "test-instance", InstanceCreated: unix(1715962701),
			Subject: "106448564376038902066", Email: "test-user@infisical-dev.iam.gserviceaccount.com",
			Audience: "71d1b279-2fe3-4828-85f5-2f4a2fdb02a1", IssuedAt: unix(1715962787), Expiry: unix(1715966387),
		},
	}, {
		token: "istio-mesh-expansion-us-central1-2019/token.jwt",
		keys:  "google_jwks_subset.json",
		want: gcpiit.Identity{
			ProjectID: "mesh-expansion-235023", ProjectNumber: 1000523393341, Zone: "us-central1-a",
			InstanceID: "3860110238946415859", InstanceName: "instance-1a", InstanceCreated: unix(1553099295),
			Subject: "100177919469981763250", Email: "1000523393341-compute@developer.gserviceaccount.com",
			Audience: "myaudience", IssuedAt: unix(1556235445), Expiry: unix(1556239045),
		},
	}, {
		// Google's v1 {kid: PEM certificate} form.
		token: "jbrekelmans-go-lib/token_idverifier_test.jwt",
		keys:  "oauth2_v1_certs.json",
		want: gcpiit.Identity{
			ProjectID: "scratch-playground", ProjectNumber: 198285616681, Zone: "australia-southeast1-b",
			InstanceID: "7483927914964205112", InstanceName: "instance-1", InstanceCreated: unix(1589608664),
			Subject: "115586174090660717475", Email: "198285616681-compute@developer.gserviceaccount.com",
			Audience: "https://example.com/", IssuedAt: unix(1589609160), Expiry: unix(1589612760),
		},
	}, {
		// The same VM a day later, same key.
		token: "jbrekelmans-go-lib/token_test_main.jwt",
		keys:  "oauth2_v1_certs.json",
		want: gcpiit.Identity{
			ProjectID: "scratch-playground", ProjectNumber: 198285616681, Zone: "australia-southeast1-b",
			InstanceID: "7483927914964205112", InstanceName: "instance-1", InstanceCreated: unix(1589608664),
			Subject: "115586174090660717475", Email: "198285616681-compute@developer.gserviceaccount.com",
			Audience: "https://example.com/", IssuedAt: unix(1589713698), Expiry: unix(1589717298),
		},
	}, {
		token: "ncbi-logging-us-central1-2020/token.jwt",
		keys:  "google_jwks_subset.json",
		want: gcpiit.Identity{
			ProjectID: "gold-optics-262407", ProjectNumber: 1076775697284, Zone: "us-central1-a",
			InstanceID: "2911665560261013853", InstanceName: "instance-1", InstanceCreated: unix(1595149984),
			Subject: "109027309377840089506", Email: "1076775697284-compute@developer.gserviceaccount.com",
			Audience: "https://www.ncbi.nlm.nih.gov", IssuedAt: unix(1596892352), Expiry: unix(1596895952),
		},
	}}
}

func unix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// TestVerify_RealEvidence verifies every real token with its pinned key
// set, the clock inside [iat, exp], and checks that each policy check
// and a one-byte change refuses it.
func TestVerify_RealEvidence(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(sharedtestdata.Attestation(t), "gcp-iit")
	ctx := context.Background()
	all := samples()
	for i, s := range all {
		t.Run(s.token, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(filepath.Join(dir, s.token))
			if err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(string(raw))
			keys := filepath.Join(dir, filepath.Dir(s.token), s.keys)
			now := s.want.IssuedAt.Add(time.Minute)
			age := now.Sub(s.want.InstanceCreated)
			want := s.want
			sum := sha256.Sum256([]byte(tok))
			want.TokenSHA256 = hex.EncodeToString(sum[:])
			policy := gcpiit.Policy{Audience: want.Audience, Projects: []string{want.ProjectID}, MaxInstanceAge: age}
			other := all[(i+1)%len(all)]
			if filepath.Dir(other.token) == filepath.Dir(s.token) {
				other = all[(i+2)%len(all)]
			}
			otherKeys := filepath.Join(dir, filepath.Dir(other.token), other.keys)

			tests := []struct {
				name   string
				keys   string
				tok    string
				at     time.Time
				policy func(*gcpiit.Policy)
				want   error
			}{
				{name: "ok/pinned-key-set"},
				{name: "ok/at-iat-minus-leeway", at: want.IssuedAt.Add(-gcpiit.Leeway)},
				{name: "ok/just-before-exp-plus-leeway", at: want.Expiry.Add(gcpiit.Leeway - time.Second), policy: func(p *gcpiit.Policy) { p.MaxInstanceAge = 0 }},
				{name: "ok/project-by-number", policy: func(p *gcpiit.Policy) { p.Projects = []string{"1", itoa(want.ProjectNumber)} }},
				{name: "ok/any-project-no-age-limit", policy: func(p *gcpiit.Policy) { p.Projects, p.MaxInstanceAge = nil, 0 }},
				{name: "fail/payload-byte-changed", tok: changeByte(t, tok, 1), want: gcpiit.ErrSignature},
				{name: "fail/signature-byte-changed", tok: changeByte(t, tok, 2), want: gcpiit.ErrSignature},
				{name: "fail/respelled-trailing-bit-in-signature", tok: respell(t, tok, "trailing-bit"), want: gcpiit.ErrMalformed},
				{name: "fail/respelled-newline-in-payload", tok: respell(t, tok, "newline"), want: gcpiit.ErrMalformed},
				{name: "fail/other-samples-key-set", keys: otherKeys, want: gcpiit.ErrSignature},
				{name: "fail/aud-wrong-nonce", policy: func(p *gcpiit.Policy) { p.Audience += "?nonce=n0nce-AAAA" }, want: gcpiit.ErrAudience},
				{name: "fail/expired", at: want.Expiry.Add(gcpiit.Leeway), want: gcpiit.ErrExpired},
				{name: "fail/before-iat", at: want.IssuedAt.Add(-gcpiit.Leeway - time.Second), want: gcpiit.ErrExpired},
				{name: "fail/project-not-allowed", policy: func(p *gcpiit.Policy) { p.Projects = []string{"workerca-prod"} }, want: gcpiit.ErrProjectNotAllowed},
				{name: "fail/instance-too-old", policy: func(p *gcpiit.Policy) { p.MaxInstanceAge = age - time.Second }, want: gcpiit.ErrInstanceTooOld},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					cfg := gcpiit.Config{JWKSFile: keys, Clock: fixed(now)}
					if tc.keys != "" {
						cfg.JWKSFile = tc.keys
					}
					if !tc.at.IsZero() {
						cfg.Clock = fixed(tc.at)
					}
					tk := tok
					if tc.tok != "" {
						tk = tc.tok
					}
					pol := policy
					if tc.policy != nil {
						tc.policy(&pol)
					}
					v, err := gcpiit.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					id, err := v.Verify(ctx, gcpiit.Evidence{Token: tk}, pol)
					checkErr(t, err, tc.want)
					if err == nil && *id != want {
						t.Errorf("identity =\n%+v\nwant\n%+v", *id, want)
					}
				})
			}
			t.Run("ok/key-set-served-over-https", func(t *testing.T) {
				t.Parallel()
				body, err := os.ReadFile(keys)
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Cache-Control", "public, max-age=19204, must-revalidate, no-transform")
					w.Write(body)
				}))
				t.Cleanup(srv.Close)
				v, err := gcpiit.New(gcpiit.Config{JWKSURL: srv.URL + "/oauth2/certs", HTTPClient: srv.Client(), Clock: fixed(now)})
				if err != nil {
					t.Fatal(err)
				}
				id, err := v.Verify(ctx, gcpiit.Evidence{Token: tok}, policy)
				checkErr(t, err, nil)
				if *id != want {
					t.Errorf("identity =\n%+v\nwant\n%+v", *id, want)
				}
			})
		})
	}
}

// TestVerify_RealEvidenceAllTested fails when a token in the shared folder
// is missing from samples(), so new evidence cannot go untested.
func TestVerify_RealEvidenceAllTested(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(sharedtestdata.Attestation(t), "gcp-iit")
	tested := map[string]bool{}
	for _, s := range samples() {
		tested[s.token] = true
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".jwt") {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if !tested[filepath.ToSlash(rel)] {
			t.Errorf("gcp-iit/%s is not in samples()", rel)
		}
		delete(tested, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for s := range tested {
		t.Errorf("samples() lists gcp-iit/%s, which does not exist", s)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
