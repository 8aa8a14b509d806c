package web_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// certificateAnswer is the body of GET /v1/admin/certificates/{serial}.
type certificateAnswer struct {
	Serial             string          `json:"serial"`
	WorkerID           string          `json:"worker_id"`
	Pool               string          `json:"pool"`
	SPIFFEID           string          `json:"spiffe_id"`
	SPKISHA256         string          `json:"spki_sha256"`
	NotBefore          time.Time       `json:"not_before"`
	NotAfter           time.Time       `json:"not_after"`
	IssuedAt           time.Time       `json:"issued_at"`
	Method             string          `json:"method"`
	EnrollmentID       string          `json:"enrollment_id"`
	AttestationSubject string          `json:"attestation_subject"`
	Evidence           json.RawMessage `json:"evidence"`
	ParentSerial       string          `json:"parent_serial"`
	RevokedAt          *time.Time      `json:"revoked_at"`
	RevocationReason   *int            `json:"revocation_reason"`
	RetainUntil        time.Time       `json:"retain_until"`
	CertificatePEM     string          `json:"certificate_pem"`
}

// TestEnrollTokenOverHTTPS walks the token flow end to end over real TLS:
// an operator mints a token, a worker posts a CSR with it and gets a chain
// that verifies to the root, and the ledger row is readable by serial.
func TestEnrollTokenOverHTTPS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		reader := f.apiKey(t, web.ScopeRead)

		tests := []struct {
			name   string
			worker string
			key    crypto.Signer
			body   func(der []byte) []byte
		}{
			{"ok/pem-csr-p256", "host-01", catest.Key(t, ca.KeyP256), func(der []byte) []byte { return pemBlock("CERTIFICATE REQUEST", der) }},
			{"ok/der-csr-ed25519", "host-02", catest.Key(t, ca.KeyEd25519), func(der []byte) []byte { return der }},
			{"ok/legacy-pem-header", "host-03", catest.Key(t, ca.KeyP256), func(der []byte) []byte { return pemBlock("NEW CERTIFICATE REQUEST", der) }},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := f.postJSON(t, "/v1/admin/tokens", f.admin, map[string]string{"pool": "default", "worker_id": tc.worker, "ttl": "30m"})
				if r.status != http.StatusCreated {
					t.Fatalf("POST /v1/admin/tokens: %d %s", r.status, r.body)
				}
				var tok tokenAnswer
				decode(t, r, &tok)
				if !strings.HasPrefix(tok.Token, "wct_"+tok.ID+"_") || tok.Pool != "default" || tok.WorkerID != tc.worker {
					t.Fatalf("token answer %+v", tok)
				}
				if want := catest.Epoch.Add(30 * time.Minute); !tok.ExpiresAt.Equal(want) || tok.ExpiresAt.Location() != time.UTC {
					t.Fatalf("expires_at = %s, want %s UTC", tok.ExpiresAt, want)
				}

				r = f.enroll(t, tok.Token, tc.body(catest.CSR(t, tc.key)))
				if r.status != http.StatusCreated {
					t.Fatalf("POST /v1/enroll/token: %d %s", r.status, r.body)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
					t.Errorf("Content-Type = %q", ct)
				}
				chain := parseChain(t, r.body)
				if len(chain) != 2 || !chain[1].Equal(f.h.Intermediate) {
					t.Fatalf("answer is %d certificates, want leaf then the intermediate", len(chain))
				}
				leaf := chain[0]
				inter := x509.NewCertPool()
				inter.AddCert(chain[1])
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: f.h.Roots(), Intermediates: inter, CurrentTime: f.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Fatalf("leaf does not verify to the root: %v", err)
				}
				wantID := "spiffe://" + trustDomain + "/worker/default/" + tc.worker
				if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID {
					t.Fatalf("URI SANs = %v, want only %s", leaf.URIs, wantID)
				}
				if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 || leaf.Subject.CommonName != tc.worker {
					t.Fatalf("identity came from the CSR: CN=%q DNS=%v", leaf.Subject.CommonName, leaf.DNSNames)
				}
				if !tc.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
					t.Fatal("leaf does not certify the CSR's key")
				}
				serial := ca.SerialHex(leaf.SerialNumber)
				if got := r.header.Get("Workerca-Serial"); got != serial {
					t.Errorf("Workerca-Serial = %q, want %q", got, serial)
				}

				for _, path := range []string{serial, strings.ToUpper(serial)} {
					r := f.do(t, request{method: http.MethodGet, path: "/v1/admin/certificates/" + path, auth: reader})
					if r.status != http.StatusOK {
						t.Fatalf("GET certificate %s: %d %s", path, r.status, r.body)
					}
					var row certificateAnswer
					decode(t, r, &row)
					block, rest := pem.Decode([]byte(row.CertificatePEM))
					if block == nil || len(rest) != 0 || !bytes.Equal(block.Bytes, leaf.Raw) {
						t.Fatalf("certificate_pem is not the issued certificate")
					}
					if row.Serial != serial || row.WorkerID != tc.worker || row.Pool != "default" || row.SPIFFEID != wantID ||
						row.Method != "token" || row.EnrollmentID != tok.ID || row.AttestationSubject != "token:"+tok.ID ||
						row.SPKISHA256 != ca.SPKISHA256(leaf) || !row.NotAfter.Equal(leaf.NotAfter) || !row.NotBefore.Equal(leaf.NotBefore) ||
						!row.IssuedAt.Equal(catest.Epoch) || row.RevokedAt != nil || row.ParentSerial != "" {
						t.Fatalf("ledger row does not match the certificate: %+v", row)
					}
					var ev map[string]string
					if err := json.Unmarshal(row.Evidence, &ev); err != nil || ev["token_id"] != tok.ID {
						t.Fatalf("evidence = %s (%v), want the token id", row.Evidence, err)
					}
				}
				if n, err := st.CountActiveWorkers(t.Context(), "default", f.clock.Now()); err != nil || n != i+1 {
					t.Fatalf("CountActiveWorkers = %d, %v; want %d", n, err, i+1)
				}
			})
		}
	})
}

// TestRefusals sends each kind of bad request and checks its exact status
// and error code, and that it left no trace in the ledger: no certificate,
// no audit event of one, and the presented token still in the state it
// was.
func TestRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		p256 := func(t *testing.T) []byte { return csrPEM(t, catest.Key(t, ca.KeyP256)) }
		// enroll is a token request with a fresh token for the worker.
		enroll := func(worker string, csr func(t *testing.T) []byte) func(t *testing.T) request {
			return func(t *testing.T) request {
				return request{method: http.MethodPost, path: "/v1/enroll/token", auth: f.token(t, "default", worker, "").Token, contentType: "application/pkcs10", body: csr(t)}
			}
		}
		withToken := func(token string) request {
			return request{method: http.MethodPost, path: "/v1/enroll/token", auth: token, contentType: "application/pkcs10", body: []byte("unused")}
		}
		admin := func(method, path, auth string, body string) request {
			r := request{method: method, path: path, auth: auth}
			if body != "" {
				r.contentType, r.body = "application/json", []byte(body)
			}
			return r
		}
		constant := func(r request) func(t *testing.T) request { return func(*testing.T) request { return r } }
		tokenBody := `{"pool":"default","worker_id":"w-admin","ttl":"1h"}`
		unknownSerial := strings.Repeat("7f", 20)

		tests := []struct {
			name   string
			req    func(t *testing.T) request
			status int
			code   string
		}{
			// The CSR.
			{"fail/csr-malformed-pem", enroll("w-malformed", func(*testing.T) []byte {
				return []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")
			}), 400, "bad_csr"},
			{"fail/csr-not-der-or-pem", enroll("w-garbage", func(*testing.T) []byte { return []byte("hello") }), 400, "bad_csr"},
			{"fail/csr-is-a-certificate", enroll("w-cert", func(*testing.T) []byte { return pemBlock("CERTIFICATE", f.h.Root.Raw) }), 400, "bad_csr"},
			{"fail/csr-data-after-pem", enroll("w-trailing", func(t *testing.T) []byte { return append(p256(t), "junk"...) }), 400, "bad_csr"},
			{"fail/csr-bad-signature", enroll("w-badsig", func(t *testing.T) []byte { return pemBlock("CERTIFICATE REQUEST", catest.BadSignatureCSR(t)) }), 400, "bad_csr"},
			{"fail/csr-rsa-1024", enroll("w-rsa1024", func(t *testing.T) []byte { return csrPEM(t, catest.WeakKey(t, "rsa1024")) }), 400, "key_not_allowed"},
			{"fail/csr-p-224", enroll("w-p224", func(t *testing.T) []byte { return csrPEM(t, catest.WeakKey(t, "p224")) }), 400, "key_not_allowed"},
			{"fail/csr-key-type-not-in-pool", enroll("w-p384", func(t *testing.T) []byte { return csrPEM(t, catest.Key(t, ca.KeyP384)) }), 400, "key_not_allowed"},

			// The body.
			{"fail/body-over-64KiB", enroll("w-big", func(t *testing.T) []byte { return bytes.Repeat([]byte("A"), web.MaxBodyBytes+1) }), 413, "body_too_large"},
			{"fail/body-over-64KiB-chunked", func(t *testing.T) request {
				r := enroll("w-big-chunked", func(t *testing.T) []byte { return bytes.Repeat([]byte("A"), web.MaxBodyBytes+1) })(t)
				r.chunked = true
				return r
			}, 413, "body_too_large"},
			{"fail/body-empty", enroll("w-empty", func(*testing.T) []byte { return []byte{} }), 400, "invalid_request"},
			{"fail/content-type-wrong", func(t *testing.T) request {
				r := enroll("w-ctype", p256)(t)
				r.contentType = "text/plain"
				return r
			}, 415, "unsupported_media_type"},
			{"fail/content-type-missing", func(t *testing.T) request {
				r := enroll("w-noctype", p256)(t)
				r.contentType = ""
				return r
			}, 415, "unsupported_media_type"},

			// The enrollment token.
			{"fail/token-missing", func(t *testing.T) request { r := withToken(""); r.body = p256(t); return r }, 401, "token_missing"},
			{"fail/token-not-bearer", func(t *testing.T) request {
				r := withToken("")
				r.header, r.body = "Basic "+f.token(t, "default", "w-basic", "").Token, p256(t)
				return r
			}, 401, "token_missing"},
			{"fail/token-malformed", func(t *testing.T) request { r := withToken("wct_nope"); r.body = p256(t); return r }, 401, "token_invalid"},
			{"fail/token-unknown", func(t *testing.T) request {
				r := withToken("wct_0123456789abcdef_" + strings.Repeat("ab", 32))
				r.body = p256(t)
				return r
			}, 401, "token_invalid"},
			{"fail/token-wrong-secret", func(t *testing.T) request {
				tok := f.token(t, "default", "w-secret", "").Token
				r := withToken(tok[:len(tok)-4] + "0000")
				r.body = p256(t)
				return r
			}, 401, "token_invalid"},
			{"fail/token-is-an-api-key", func(t *testing.T) request { r := withToken(f.admin); r.body = p256(t); return r }, 401, "token_invalid"},
			{"fail/token-expired", func(t *testing.T) request {
				r := request{method: http.MethodPost, path: "/v1/enroll/token", auth: f.token(t, "default", "w-expired", "5m").Token, contentType: "application/pkcs10", body: p256(t)}
				f.clock.Add(5 * time.Minute) // expiry is exclusive: at ExpiresAt the token is dead
				t.Cleanup(func() { f.clock.Add(-5 * time.Minute) })
				return r
			}, 401, "token_expired"},
			{"fail/token-already-used", func(t *testing.T) request {
				tok := f.token(t, "default", "w-used", "").Token
				if r := f.enroll(t, tok, p256(t)); r.status != http.StatusCreated {
					t.Fatalf("first use: %d %s", r.status, r.body)
				}
				r := withToken(tok)
				r.body = p256(t)
				return r
			}, 401, "token_used"},
			{"fail/pool-full", func(t *testing.T) request {
				f.mustEnroll(t, "capped", "first")
				return request{method: http.MethodPost, path: "/v1/enroll/token", auth: f.token(t, "capped", "second", "").Token, contentType: "application/pkcs10", body: p256(t)}
			}, 409, "pool_full"},

			// The API key.
			{"fail/api-key-missing", constant(admin(http.MethodPost, "/v1/admin/tokens", "", tokenBody)), 401, "unauthenticated"},
			{"fail/api-key-not-bearer", func(*testing.T) request {
				r := admin(http.MethodPost, "/v1/admin/tokens", "", tokenBody)
				r.header = "Basic " + f.admin
				return r
			}, 401, "unauthenticated"},
			{"fail/api-key-malformed", constant(admin(http.MethodPost, "/v1/admin/tokens", "wca_nope", tokenBody)), 401, "api_key_invalid"},
			{"fail/api-key-unknown", constant(admin(http.MethodPost, "/v1/admin/tokens", "wca_0123456789abcdef_"+strings.Repeat("cd", 32), tokenBody)), 401, "api_key_invalid"},
			{"fail/api-key-wrong-secret", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin[:len(f.admin)-4]+"0000", tokenBody)), 401, "api_key_invalid"},
			{"fail/api-key-is-a-token", func(t *testing.T) request {
				return admin(http.MethodPost, "/v1/admin/tokens", f.token(t, "default", "w-as-key", "").Token, tokenBody)
			}, 401, "api_key_invalid"},
			{"fail/api-key-scope-read-creates-token", func(t *testing.T) request {
				return admin(http.MethodPost, "/v1/admin/tokens", f.apiKey(t, web.ScopeRead), tokenBody)
			}, 403, "insufficient_scope"},
			{"fail/api-key-scope-tokens-reads-certificate", func(t *testing.T) request {
				return admin(http.MethodGet, "/v1/admin/certificates/"+unknownSerial, f.apiKey(t, web.ScopeTokensCreate, web.ScopeRevoke), "")
			}, 403, "insufficient_scope"},
			{"fail/api-key-scope-read-lists-keys", func(t *testing.T) request {
				return admin(http.MethodGet, "/v1/admin/api-keys", f.apiKey(t, web.ScopeRead, web.ScopeTokensCreate), "")
			}, 403, "insufficient_scope"},
			{"fail/api-key-expired", func(t *testing.T) request {
				key := f.apiKeyAt(t, f.clock.Now().Add(-time.Hour), time.Hour, web.ScopeAdmin) // expires exactly now
				return admin(http.MethodPost, "/v1/admin/tokens", key, tokenBody)
			}, 401, "api_key_expired"},
			{"fail/api-key-revoked", func(t *testing.T) request {
				key := f.apiKey(t, web.ScopeAdmin)
				id := strings.Split(key, "_")[1]
				r := f.do(t, request{method: http.MethodDelete, path: "/v1/admin/api-keys/" + id, auth: f.admin})
				if r.status != http.StatusOK {
					t.Fatalf("DELETE api key: %d %s", r.status, r.body)
				}
				return admin(http.MethodPost, "/v1/admin/tokens", key, tokenBody)
			}, 401, "api_key_revoked"},

			// JSON bodies.
			{"fail/json-invalid", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":`)), 400, "invalid_json"},
			{"fail/json-unknown-field", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"w","ttl":"1h","admin":true}`)), 400, "invalid_json"},
			{"fail/json-wrong-type", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"w","ttl":3600}`)), 400, "invalid_json"},
			{"fail/json-trailing-data", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, tokenBody+`{}`)), 400, "invalid_json"},
			{"fail/json-content-type-wrong", func(*testing.T) request {
				r := admin(http.MethodPost, "/v1/admin/tokens", f.admin, tokenBody)
				r.contentType = "text/plain"
				return r
			}, 415, "unsupported_media_type"},
			{"fail/json-body-over-16KiB", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"`+strings.Repeat("a", 16<<10)+`"}`)), 413, "body_too_large"},
			{"fail/token-request-unknown-pool", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"nope","worker_id":"w"}`)), 400, "unknown_pool"},
			{"fail/token-request-worker-id-with-slash", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"a/b"}`)), 400, "invalid_request"},
			{"fail/token-request-ttl-not-a-duration", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"w","ttl":"soon"}`)), 400, "invalid_request"},
			{"fail/token-request-ttl-negative", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"w","ttl":"-1h"}`)), 400, "invalid_request"},
			{"fail/token-request-ttl-over-max", constant(admin(http.MethodPost, "/v1/admin/tokens", f.admin, `{"pool":"default","worker_id":"w","ttl":"169h"}`)), 400, "invalid_request"},
			{"fail/api-key-request-unknown-scope", constant(admin(http.MethodPost, "/v1/admin/api-keys", f.admin, `{"name":"x","scopes":["root"]}`)), 400, "invalid_request"},
			{"fail/api-key-request-no-name", constant(admin(http.MethodPost, "/v1/admin/api-keys", f.admin, `{"scopes":["read"]}`)), 400, "invalid_request"},

			// Paths.
			{"fail/serial-not-hex", constant(admin(http.MethodGet, "/v1/admin/certificates/xyz1", f.admin, "")), 400, "invalid_serial"},
			{"fail/serial-odd-length", constant(admin(http.MethodGet, "/v1/admin/certificates/abc", f.admin, "")), 400, "invalid_serial"},
			{"fail/serial-over-20-octets", constant(admin(http.MethodGet, "/v1/admin/certificates/"+strings.Repeat("ab", 21), f.admin, "")), 400, "invalid_serial"},
			{"fail/serial-unknown", constant(admin(http.MethodGet, "/v1/admin/certificates/"+unknownSerial, f.admin, "")), 404, "not_found"},
			{"fail/api-key-revoke-unknown-id", constant(admin(http.MethodDelete, "/v1/admin/api-keys/0123456789abcdef", f.admin, "")), 404, "not_found"},
			{"fail/api-key-revoke-malformed-id", constant(admin(http.MethodDelete, "/v1/admin/api-keys/nope", f.admin, "")), 404, "not_found"},
			{"fail/route-unknown", constant(admin(http.MethodGet, "/v1/nope", "", "")), 404, "not_found"},
			{"fail/method-get-on-enroll", constant(admin(http.MethodGet, "/v1/enroll/token", "", "")), 405, "method_not_allowed"},
			{"fail/method-put-on-tokens", constant(admin(http.MethodPut, "/v1/admin/tokens", f.admin, tokenBody)), 405, "method_not_allowed"},
			{"fail/method-post-on-bundle", constant(admin(http.MethodPost, "/v1/bundle", "", "")), 405, "method_not_allowed"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := tc.req(t)
				before := f.ledger(t, req.auth)
				r := f.do(t, req)
				wantError(t, r, tc.status, tc.code)
				if after := f.ledger(t, req.auth); !after.equal(before) {
					t.Fatalf("the refusal changed the ledger: before %+v, after %+v", before, after)
				}
			})
		}
		// No refusal took the server down.
		if r := f.do(t, request{method: http.MethodGet, path: "/healthz"}); r.status != http.StatusOK {
			t.Fatalf("GET /healthz after the refusals: %d", r.status)
		}
	})
}

func TestParseSerial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"ok/lowercase", "01ab", "01ab"},
		{"ok/uppercase", "01AB", "01ab"},
		{"ok/20-octets", strings.Repeat("Ff", 20), strings.Repeat("ff", 20)},
		{"fail/empty", "", ""},
		{"fail/odd-length", "abc", ""},
		{"fail/not-hex", "zz", ""},
		{"fail/colons", "01:ab", ""},
		{"fail/over-20-octets", strings.Repeat("ab", 21), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := web.ParseSerial(tc.in)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseSerial(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
				}
				return
			}
			var we *web.Error
			if !errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Code != "invalid_serial" {
				t.Fatalf("ParseSerial(%q) = %q, %v; want a 400 invalid_serial *web.Error", tc.in, got, err)
			}
		})
	}
}
