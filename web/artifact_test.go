package web_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/retention"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/verifier"
	"github.com/workerca/workerca/web"
)

const day = 24 * time.Hour

// signer is an enrolled worker: its TLS certificate and artifact signer.
type signer struct {
	tls    *tls.Certificate
	leaf   *x509.Certificate
	signer artifact.Signer
}

func (f *fixture) signer(t *testing.T, pool, worker string) signer {
	t.Helper()
	tc, leaf := f.workerCert(t, pool, worker)
	return signer{tls: tc, leaf: leaf, signer: artifact.Signer{Key: tc.PrivateKey.(crypto.Signer), Chain: []*x509.Certificate{leaf, f.h.Intermediate}}}
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (s signer) sign(t *testing.T, digest, name string) string {
	t.Helper()
	jws, err := artifact.Sign(s.signer, artifact.Payload{SHA256: digest, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// registration is POST /v1/artifacts with body as JSON, presenting cert
// over mTLS (none when nil).
func registration(t *testing.T, body any, cert *tls.Certificate) request {
	t.Helper()
	return request{method: http.MethodPost, path: "/v1/artifacts", contentType: "application/json", body: mustJSON(t, body), cert: cert}
}

// withAuth is r with the API key auth as its bearer token.
func withAuth(r request, auth string) request {
	r.auth = auth
	return r
}

func (f *fixture) register(t *testing.T, cert *tls.Certificate, body any) response {
	t.Helper()
	return f.do(t, registration(t, body, cert))
}

// pinTLS makes the fixture's client check the server certificate at the
// start instant, so the clock can run past its lifetime.
func (f *fixture) pinTLS() {
	f.client = &http.Client{Timeout: f.client.Timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.h.Roots(), Time: func() time.Time { return catest.Epoch.Add(time.Minute) }, MinVersion: tls.VersionTLS12},
	}}
}

// statusAt fetches the signed status of serial at the instant at and
// checks it as TestStatusJWS does.
func (f *fixture) statusAt(t *testing.T, serial string, at time.Time) revocation.Status {
	t.Helper()
	return f.statusOf(t, serial, "?at="+at.UTC().Format(time.RFC3339))
}

// TestArtifactRetention walks the clock: a certificate whose artifact
// registration runs to day 90 outlives its own notAfter + buffer, still
// answers its status at the signing time on day 30, and is pruned with
// the registration after day 90; a certificate without artifacts goes at
// notAfter + buffer.
func TestArtifactRetention(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		pruner, err := retention.New(retention.Config{Store: st, Clock: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		w := f.signer(t, "default", "w-keep")
		plain := f.mustEnroll(t, "default", "w-plain")
		digest := digestOf("release 1.0")
		r := f.register(t, w.tls, map[string]any{"signature": w.sign(t, digest, "app-1.0.tar.gz"), "expires_at": catest.Epoch.Add(90 * day)})
		if r.status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		var reg web.ArtifactRegistration
		decode(t, r, &reg)
		signedAt := reg.RegisteredAt
		reader := f.apiKey(t, web.ScopeRead)
		f.pinTLS()
		exists := func(path string) bool {
			t.Helper()
			r := f.do(t, request{method: http.MethodGet, path: path, auth: reader})
			if r.status != http.StatusOK && r.status != http.StatusNotFound {
				t.Fatalf("GET %s: %d %s", path, r.status, r.body)
			}
			return r.status == http.StatusOK
		}
		prune := func(at time.Time) {
			t.Helper()
			f.clock.Add(at.Sub(f.clock.Now()))
			if _, err := pruner.Once(t.Context(), false, "test"); err != nil {
				t.Fatal(err)
			}
		}
		certPath, plainPath, artPath := "/v1/admin/certificates/"+reg.Serial, "/v1/admin/certificates/"+serialOf(plain), "/v1/artifacts/"+digest

		prune(catest.Epoch.Add(30 * day))
		if !exists(certPath) || !exists(artPath) {
			t.Fatal("day 30: the signing certificate or its registration was pruned")
		}
		if exists(plainPath) {
			t.Error("day 30: a certificate without artifacts outlived notAfter + buffer")
		}
		if s := f.statusAt(t, reg.Serial, signedAt); s.Status != revocation.StatusGood {
			t.Errorf("day 30: status at the signing time = %s, want good", s.Status)
		}
		if s := f.statusAt(t, reg.Serial, f.clock.Now()); s.Status != revocation.StatusExpired {
			t.Errorf("day 30: status now = %s, want expired", s.Status)
		}

		prune(catest.Epoch.Add(90*day - time.Second))
		if !exists(certPath) || !exists(artPath) {
			t.Fatal("a second before day 90: pruned too early")
		}
		prune(catest.Epoch.Add(90*day + 72*time.Hour + time.Second))
		if exists(certPath) || exists(artPath) {
			t.Fatal("after day 90 + buffer: history still kept")
		}
		if s := f.statusAt(t, reg.Serial, signedAt); s.Status != revocation.StatusUnknown {
			t.Errorf("after pruning: status = %s, want unknown", s.Status)
		}
	})
}

// TestArtifactRegistration: the receipt's claims and signature, the
// idempotent second registration, lookup, and every refusal.
func TestArtifactRegistration(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		w := f.signer(t, "default", "w-art")
		other := f.signer(t, "default", "w-other")
		digest := digestOf("build 42")
		jws := w.sign(t, digest, "build-42")
		exp := catest.Epoch.Add(30 * day)

		r := f.register(t, w.tls, map[string]any{"signature": jws, "expires_at": exp})
		if r.status != http.StatusCreated || r.header.Get("Location") != "/v1/artifacts/"+digest {
			t.Fatalf("register: %d %s (Location %q)", r.status, r.body, r.header.Get("Location"))
		}
		var reg web.ArtifactRegistration
		decode(t, r, &reg)
		rc, err := artifact.ParseReceipt(reg.Receipt, f.rev.StatusKeys())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(jws))
		want := artifact.Receipt{SHA256: digest, Serial: serialOf(w.leaf), SPIFFEID: "spiffe://" + trustDomain + "/worker/default/w-art",
			RegisteredAt: catest.Epoch, ExpiresAt: exp, SignatureSHA256: hex.EncodeToString(sum[:])}
		if rc.SHA256 != want.SHA256 || rc.Serial != want.Serial || rc.SPIFFEID != want.SPIFFEID || !rc.RegisteredAt.Equal(want.RegisteredAt) ||
			!rc.ExpiresAt.Equal(want.ExpiresAt) || rc.SignatureSHA256 != want.SignatureSHA256 {
			t.Errorf("receipt = %+v, want %+v", rc, want)
		}
		if reg.WorkerID != "w-art" || reg.Pool != "default" || reg.Name != "build-42" || reg.Signature != jws {
			t.Errorf("registration = %+v", reg)
		}

		// The same signature again, a minute later and with another
		// expiry: the first registration and receipt stand.
		f.clock.Add(time.Minute)
		t.Cleanup(func() { f.clock.Add(-time.Minute) })
		r = f.register(t, w.tls, map[string]any{"signature": jws, "expires_at": exp.Add(day)})
		var again web.ArtifactRegistration
		decode(t, r, &again)
		if r.status != http.StatusOK || again.Receipt != reg.Receipt || !again.ExpiresAt.Equal(exp) {
			t.Errorf("second registration: %d, receipt same %v, expires %s", r.status, again.Receipt == reg.Receipt, again.ExpiresAt)
		}
		// A second signer of the same artifact is a second registration.
		r = f.register(t, other.tls, map[string]any{"signature": other.sign(t, digest, ""), "expires_at": exp})
		if r.status != http.StatusCreated {
			t.Fatalf("second signer: %d %s", r.status, r.body)
		}
		r = f.do(t, request{method: http.MethodGet, path: "/v1/artifacts/" + digest})
		var list web.ArtifactResponse
		decode(t, r, &list)
		if r.status != http.StatusOK || len(list.Registrations) != 2 || list.Registrations[0].Receipt != reg.Receipt || list.Registrations[1].WorkerID != "w-other" {
			t.Errorf("lookup: %d %+v", r.status, list)
		}

		revoked := f.signer(t, "default", "w-revoked")
		f.revoke(t, map[string]any{"serial": serialOf(revoked.leaf), "reason": "keyCompromise"})
		good := func(s signer) map[string]any {
			return map[string]any{"signature": s.sign(t, digestOf("x"), ""), "expires_at": exp}
		}
		parts := strings.Split(jws, ".")
		admin := f.apiKey(t, web.ScopeAdmin)
		for _, tc := range []struct {
			name   string
			req    request
			status int
			code   string
		}{
			{"fail/no-client-certificate", registration(t, good(w), nil), 401, "client_certificate_required"},
			{"fail/api-key", withAuth(registration(t, good(w), nil), admin), 403, "api_key_not_allowed"},
			{"fail/signed-by-another-worker", registration(t, good(other), w.tls), 403, "signer_not_caller"},
			{"fail/revoked-certificate", registration(t, good(revoked), revoked.tls), 401, "certificate_revoked"},
			{"fail/signature-tampered", registration(t, map[string]any{"signature": parts[0] + "." + parts[1] + "." + parts[2][:10] + "AAAA" + parts[2][14:], "expires_at": exp}, w.tls), 400, "signature_invalid"},
			{"fail/signature-garbage", registration(t, map[string]any{"signature": "not.a.jws", "expires_at": exp}, w.tls), 400, "signature_malformed"},
			{"fail/expires-in-the-past", registration(t, map[string]any{"signature": jws, "expires_at": catest.Epoch.Add(-time.Second)}, w.tls), 400, "invalid_request"},
			{"fail/expires-beyond-max-lifetime", registration(t, map[string]any{"signature": w.sign(t, digestOf("far"), ""), "expires_at": catest.Epoch.Add(6 * 365 * day)}, w.tls), 400, "invalid_request"},
			{"fail/no-expiry", registration(t, map[string]any{"signature": jws}, w.tls), 400, "invalid_request"},
			{"fail/unknown-field", registration(t, map[string]any{"signature": jws, "expires_at": exp, "receipt": "x"}, w.tls), 400, "invalid_json"},
			{"fail/not-json", request{method: http.MethodPost, path: "/v1/artifacts", contentType: "application/json", body: []byte("{"), cert: w.tls}, 400, "invalid_json"},
			{"fail/oversize", registration(t, map[string]any{"signature": strings.Repeat("A", web.MaxBodyBytes), "expires_at": exp}, w.tls), 413, "body_too_large"},
			{"fail/lookup-unknown", request{method: http.MethodGet, path: "/v1/artifacts/" + digestOf("never")}, 404, "artifact_not_found"},
			{"fail/lookup-bad-digest", request{method: http.MethodGet, path: "/v1/artifacts/" + strings.ToUpper(digest)}, 400, "invalid_request"},
			{"fail/lookup-plain-http", request{method: http.MethodGet, path: "/v1/artifacts/" + digest, plain: true}, 403, "https_required"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := f.artifactCount(t, digest)
				wantError(t, f.do(t, tc.req), tc.status, tc.code)
				if after := f.artifactCount(t, digest); after != before {
					t.Errorf("registrations of %s: %d → %d", digest, before, after)
				}
			})
		}
	})
}

func (f *fixture) artifactCount(t *testing.T, digest string) int {
	t.Helper()
	rows, err := f.st.Artifacts(t.Context(), digest)
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArtifactConcurrentRegistration: sixteen registrations of one
// signature at once make one registration, and all answer its receipt.
func TestArtifactConcurrentRegistration(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		w := f.signer(t, "default", "w-race")
		body := map[string]any{"signature": w.sign(t, digestOf("race"), ""), "expires_at": catest.Epoch.Add(day)}
		var mu sync.Mutex
		statuses, receipts := map[int]int{}, map[string]bool{}
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				r := f.register(t, w.tls, body)
				var reg web.ArtifactRegistration
				_ = json.Unmarshal(r.body, &reg)
				mu.Lock()
				defer mu.Unlock()
				statuses[r.status]++
				receipts[reg.Receipt] = true
			})
		}
		wg.Wait()
		if statuses[http.StatusCreated] != 1 || statuses[http.StatusOK] != 15 || len(receipts) != 1 {
			t.Fatalf("statuses %v, %d distinct receipts; want one 201, fifteen 200, one receipt", statuses, len(receipts))
		}
	})
}

// TestWorkerHistory: the certificates a worker held at an instant, with
// their public keys and status then; pagination; who may ask.
func TestWorkerHistory(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		// Three certificates of w-hist, 24 h each, issued 10 h apart, the
		// second revoked for keyCompromise from 2 h after its issue.
		var certs []*x509.Certificate
		var keys []crypto.Signer
		var self *tls.Certificate
		for i := range 3 {
			if i > 0 {
				f.clock.Add(10 * time.Hour)
			}
			key := catest.Key(t, ca.KeyP256)
			r := f.enroll(t, f.token(t, "default", "w-hist", "").Token, csrPEM(t, key))
			if r.status != http.StatusCreated {
				t.Fatalf("enroll: %d %s", r.status, r.body)
			}
			chain := parseChain(t, r.body)
			certs, keys = append(certs, chain[0]), append(keys, key)
			self = tlsCert(key, chain...)
		}
		t.Cleanup(func() { f.clock.Add(-30 * time.Hour) })
		inv := certs[1].NotBefore.Add(2 * time.Hour)
		f.revoke(t, map[string]any{"serial": serialOf(certs[1]), "reason": "keyCompromise", "invalidity_date": inv})
		stranger, _ := f.workerCert(t, "default", "w-stranger")
		reader := f.apiKey(t, web.ScopeRead)
		get := func(query, auth string, cert *tls.Certificate) (web.HistoryResponse, response) {
			t.Helper()
			r := f.do(t, request{method: http.MethodGet, path: "/v1/workers/w-hist/certificates" + query, auth: auth, cert: cert})
			var h web.HistoryResponse
			if r.status == http.StatusOK {
				decode(t, r, &h)
			}
			return h, r
		}
		serials := func(h web.HistoryResponse) []string {
			var out []string
			for _, c := range h.Certificates {
				out = append(out, c.Serial)
			}
			return out
		}
		at := func(ti time.Time) string { return "?valid_at=" + ti.UTC().Format(time.RFC3339) }

		// All, newest first, two pages of two; the worker may read its own.
		var all []string
		cursor := ""
		for page := 0; ; page++ {
			q := "?limit=2"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			h, r := get(q, "", self)
			if r.status != http.StatusOK {
				t.Fatalf("page %d: %d %s", page, r.status, r.body)
			}
			all = append(all, serials(h)...)
			if cursor = h.NextCursor; cursor == "" || page > 3 {
				break
			}
		}
		wantSerials(t, "all pages", all, serialOf(certs[2]), serialOf(certs[1]), serialOf(certs[0]))

		for _, tc := range []struct {
			name   string
			query  string
			auth   string
			cert   *tls.Certificate
			status int
			code   string
		}{
			{"fail/another-worker", "", "", stranger, 403, "not_own_worker"},
			{"fail/no-credential", "", "", nil, 401, "unauthenticated"},
			{"fail/scope-revoke", "", f.apiKey(t, web.ScopeRevoke), nil, 403, "insufficient_scope"},
			{"fail/valid-at-not-a-time", "?valid_at=yesterday", reader, nil, 400, "invalid_request"},
			{"fail/valid-at-in-the-future", at(f.clock.Now().Add(time.Hour)), reader, nil, 400, "invalid_request"},
			{"fail/limit-zero", "?limit=0", reader, nil, 400, "invalid_request"},
			{"fail/limit-too-large", "?limit=1001", reader, nil, 400, "invalid_request"},
			{"fail/bad-cursor", "?cursor=garbage", reader, nil, 400, "invalid_cursor"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, r := get(tc.query, tc.auth, tc.cert)
				wantError(t, r, tc.status, tc.code)
			})
		}
		wantError(t, f.do(t, request{method: http.MethodGet, path: "/v1/workers/bad%20id/certificates", auth: reader}), 400, "invalid_request")

		// Past the first certificate's notAfter; the client checks the
		// server's certificate at the start instant.
		f.clock.Add(10 * time.Hour)
		f.pinTLS()
		// certs[0] alone; certs[0] and certs[1] (revoked only from inv on).
		h, r := get(at(certs[0].NotBefore.Add(time.Hour)), reader, nil)
		wantSerials(t, "before the second", serials(h), serialOf(certs[0]))
		if r.status != 200 || h.Certificates[0].Status != "good" || h.Certificates[0].SPKISHA256 == "" {
			t.Fatalf("%d %+v", r.status, h)
		}
		pub, err := x509.MarshalPKIXPublicKey(keys[0].Public())
		if err != nil {
			t.Fatal(err)
		}
		if h.Certificates[0].PublicKeyPEM != string(pemBlock("PUBLIC KEY", pub)) || h.Certificates[0].EnrollmentMethod != "token" {
			t.Errorf("public key or method wrong: %+v", h.Certificates[0])
		}
		h, _ = get(at(certs[1].NotBefore.Add(time.Hour)), reader, nil)
		wantSerials(t, "one hour into the second", serials(h), serialOf(certs[1]), serialOf(certs[0]))
		if h.Certificates[0].Status != "good" {
			t.Errorf("second certificate before its invalidity date: %s", h.Certificates[0].Status)
		}
		h, _ = get(at(inv), reader, nil)
		if h.Certificates[0].Status != "revoked" || h.Certificates[0].Reason != "keyCompromise" {
			t.Errorf("second certificate at its invalidity date: %+v", h.Certificates[0])
		}
		// Exactly at notAfter the first is still held; a second later not.
		h, _ = get(at(certs[0].NotAfter), reader, nil)
		wantSerials(t, "at the first's notAfter", serials(h), serialOf(certs[2]), serialOf(certs[1]), serialOf(certs[0]))
		h, _ = get(at(certs[0].NotAfter.Add(time.Second)), reader, nil)
		wantSerials(t, "after the first's notAfter", serials(h), serialOf(certs[2]), serialOf(certs[1]))

	})
}

// TestArtifactVerifyEndToEnd is the release engineer's story on a real
// server: enroll, sign, register, move the clock past notAfter, and
// verify with the receipt through the CA's signed status over HTTP.
func TestArtifactVerifyEndToEnd(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		type signed struct {
			s       signer
			digest  string
			jws     string
			receipt string
		}
		sign := func(worker string) signed {
			t.Helper()
			s := f.signer(t, "default", worker)
			d := digestOf("artifact of " + worker)
			jws := s.sign(t, d, worker+".tar.gz")
			r := f.register(t, s.tls, map[string]any{"signature": jws, "expires_at": catest.Epoch.Add(90 * day)})
			if r.status != http.StatusCreated {
				t.Fatalf("register %s: %d %s", worker, r.status, r.body)
			}
			var reg web.ArtifactRegistration
			decode(t, r, &reg)
			return signed{s: s, digest: d, jws: jws, receipt: reg.Receipt}
		}
		good, early, late := sign("w-good"), sign("w-compromised-early"), sign("w-compromised-late")
		signedAt := catest.Epoch

		// An hour later both are revoked for keyCompromise: one from a
		// minute before the signing, one from a minute after.
		f.clock.Add(time.Hour)
		f.revoke(t, map[string]any{"serial": serialOf(early.s.leaf), "reason": "keyCompromise", "invalidity_date": signedAt.Add(-time.Minute)})
		f.revoke(t, map[string]any{"serial": serialOf(late.s.leaf), "reason": "keyCompromise", "invalidity_date": signedAt.Add(time.Minute)})

		// Three days on, every worker certificate has expired.
		f.clock.Add(3 * day)
		keys := f.rev.StatusKeys()
		status, err := verifier.NewHTTPStatus(f.httpURL, &http.Client{Timeout: 10 * time.Second}, keys)
		if err != nil {
			t.Fatal(err)
		}
		v, err := verifier.New(verifier.Config{Roots: f.h.Roots(), StatusKeys: keys, Status: status, Clock: f.clock.Now,
			TrustDomain: trustDomain, AllowPools: []string{"default"}})
		if err != nil {
			t.Fatal(err)
		}
		forger, err := artifact.NewReceiptSigner(catest.Key(t, ca.KeyP256))
		if err != nil {
			t.Fatal(err)
		}
		claims, err := artifact.ParseReceipt(good.receipt, keys)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := forger.Sign(*claims)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name     string
			req      verifier.ArtifactRequest
			accepted bool
			code     string
		}{
			{"ok/with-receipt-after-notAfter", verifier.ArtifactRequest{Digest: good.digest, Signature: good.jws, Receipt: good.receipt}, true, verifier.CodeOK},
			{"ok/compromised-after-signing", verifier.ArtifactRequest{Digest: late.digest, Signature: late.jws, Receipt: late.receipt}, true, verifier.CodeOK},
			{"fail/tampered-artifact", verifier.ArtifactRequest{Digest: digestOf("artifact of w-gooD"), Signature: good.jws, Receipt: good.receipt}, false, verifier.CodeDigestMismatch},
			{"fail/compromised-before-signing", verifier.ArtifactRequest{Digest: early.digest, Signature: early.jws, Receipt: early.receipt}, false, verifier.CodeKeyCompromised},
			{"fail/receipt-by-another-key", verifier.ArtifactRequest{Digest: good.digest, Signature: good.jws, Receipt: forged}, false, verifier.CodeReceiptUntrusted},
			{"fail/receipt-of-another-signature", verifier.ArtifactRequest{Digest: good.digest, Signature: good.jws, Receipt: late.receipt}, false, verifier.CodeReceiptMismatch},
			{"fail/no-receipt-certificate-expired", verifier.ArtifactRequest{Digest: good.digest, Signature: good.jws}, false, verifier.CodeExpired},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := v.Artifact(t.Context(), tc.req)
				if err != nil {
					t.Fatal(err)
				}
				if res.Accepted != tc.accepted || res.Code != tc.code {
					t.Fatalf("accepted %v code %s (%s); want %v %s", res.Accepted, res.Code, res.Message, tc.accepted, tc.code)
				}
				if tc.accepted && (!res.At.Equal(signedAt) || res.AtSource != verifier.AtReceipt) {
					t.Errorf("checked at %s (%s), want the receipt's %s", res.At, res.AtSource, signedAt)
				}
			})
		}
	})
}
