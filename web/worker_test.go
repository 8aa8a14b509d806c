package web_test

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// workerCert enrolls worker in pool with a fresh key and returns it as a
// TLS client certificate (leaf and intermediate).
func (f *fixture) workerCert(t *testing.T, pool, worker string) (*tls.Certificate, *x509.Certificate) {
	t.Helper()
	key := catest.Key(t, ca.KeyP256)
	r := f.enroll(t, f.token(t, pool, worker, "").Token, csrPEM(t, key))
	if r.status != http.StatusCreated {
		t.Fatalf("enroll %s/%s: %d %s", pool, worker, r.status, r.body)
	}
	chain := parseChain(t, r.body)
	return tlsCert(key, chain...), chain[0]
}

func tlsCert(key crypto.Signer, chain ...*x509.Certificate) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// signedBy issues a worker certificate from h's intermediate at now,
// outside the fixture's ledger.
func signedBy(t *testing.T, h *catest.Hierarchy, now time.Time) *tls.Certificate {
	t.Helper()
	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return now }})
	p, err := ca.NewProfile(ca.ProfileConfig{Name: "default", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key := catest.Key(t, ca.KeyP256)
	cert, err := iss.Issue(ca.IssueRequest{CSR: catest.ParsedCSR(t, key), Profile: p,
		Identity: ca.Identity{TrustDomain: trustDomain, Pool: "default", WorkerID: "intruder", Method: "token", EnrollmentID: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	return tlsCert(key, cert, h.Intermediate)
}

// TestRouteAccessMatrix walks every registered route with every kind of
// credential and checks the access rule holds: operator routes refuse
// workers, worker routes refuse API keys, nothing is let through without
// its credential. A route whose rule this test does not know fails it.
func TestRouteAccessMatrix(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		worker, _ := f.workerCert(t, "default", "w-matrix")
		expired := signedBy(t, f.h, catest.Epoch.Add(-2*time.Hour))
		foreign := signedBy(t, catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour)), catest.Epoch)
		keys := map[web.Scope]string{}
		for _, sc := range web.Scopes {
			keys[sc] = f.apiKey(t, sc)
		}

		type cred struct {
			name string
			cert *tls.Certificate
			key  web.Scope
		}
		creds := []cred{{name: "none"}, {name: "worker", cert: worker}, {name: "worker-expired", cert: expired}, {name: "foreign-ca", cert: foreign}}
		for _, sc := range web.Scopes {
			creds = append(creds, cred{name: "api-key-" + string(sc), key: sc})
		}
		// outcome is the wanted status and code; status 0 means "not
		// refused for lack of credential" (any status but 401 and 403).
		type outcome struct {
			status int
			code   string
		}
		want := func(t *testing.T, route web.RouteInfo, c cred) outcome {
			switch {
			case route.Access == "anyone" || route.Access == "attestation-evidence":
				return outcome{}
			case route.Access == "enrollment-token":
				if c.key != "" {
					return outcome{401, "token_invalid"}
				}
				return outcome{401, "token_missing"}
			case route.Access == "worker-certificate":
				switch {
				case c.key != "":
					return outcome{403, "api_key_not_allowed"}
				case c.name == "none":
					return outcome{401, "client_certificate_required"}
				case c.name == "worker-expired":
					return outcome{401, "certificate_expired"}
				case c.name == "foreign-ca":
					return outcome{401, "certificate_untrusted"}
				}
				return outcome{}
			case route.Access == "api-key:read|worker-certificate:self":
				// The matrix's worker is w-matrix; the path names another.
				switch {
				case c.name == "worker":
					return outcome{403, "not_own_worker"}
				case c.name == "worker-expired":
					return outcome{401, "certificate_expired"}
				case c.name == "foreign-ca":
					return outcome{401, "certificate_untrusted"}
				case c.key == "":
					return outcome{401, "unauthenticated"}
				case c.key != web.ScopeAdmin && c.key != web.ScopeRead:
					return outcome{403, "insufficient_scope"}
				}
				return outcome{}
			case strings.HasPrefix(route.Access, "api-key:"):
				scope := web.Scope(strings.TrimPrefix(route.Access, "api-key:"))
				switch {
				case c.name == "worker":
					return outcome{403, "worker_not_allowed"}
				case c.key == "":
					return outcome{401, "unauthenticated"}
				case c.key != web.ScopeAdmin && c.key != scope:
					return outcome{403, "insufficient_scope"}
				}
				return outcome{}
			}
			t.Fatalf("route %s %s has access rule %q that this test does not know: add it here", route.Method, route.Path, route.Access)
			return outcome{}
		}

		routes := f.srv.Routes()
		if len(routes) < 14 {
			t.Fatalf("only %d routes registered", len(routes))
		}
		for _, route := range routes {
			path := strings.NewReplacer(":serial", "0123", ":id", "0123456789abcdef", ":hash", strings.Repeat("ab", 32)).Replace(route.Path)
			for _, c := range creds {
				t.Run(route.Method+path+"/"+c.name, func(t *testing.T) {
					req := request{method: route.Method, path: path, cert: c.cert}
					if route.Access == "enrollment-token" {
						req.contentType, req.body = "application/pkcs10", csrPEM(t, catest.Key(t, ca.KeyP256))
					}
					if c.key != "" {
						req.auth = keys[c.key]
					}
					r := f.do(t, req)
					w := want(t, route, c)
					if w.status == 0 {
						if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
							t.Fatalf("refused with %d %s; want the credential accepted", r.status, r.body)
						}
						return
					}
					wantError(t, r, w.status, w.code)
				})
			}
		}
	})
}

// TestRenewOverMTLS: a worker renews itself with a new key; the new
// certificate has the same identity and links its parent; refusals.
func TestRenewOverMTLS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		cert, leaf := f.workerCert(t, "default", "w-renew")
		renew := func(c *tls.Certificate, csr []byte) response {
			body := `{"csr":` + jsonString(string(csr)) + `}`
			return f.do(t, request{method: http.MethodPost, path: "/v1/renew", cert: c, contentType: "application/json", body: []byte(body)})
		}
		f.clock.Add(time.Hour)
		newKey := catest.Key(t, ca.KeyEd25519)
		r := renew(cert, csrPEM(t, newKey))
		if r.status != http.StatusCreated {
			t.Fatalf("renew: %d %s", r.status, r.body)
		}
		var ans web.EnrollResponse
		decode(t, r, &ans)
		next := parseChain(t, []byte(ans.Chain))[0]
		if next.URIs[0].String() != leaf.URIs[0].String() || next.Subject.CommonName != leaf.Subject.CommonName {
			t.Fatalf("renewed identity %v / %s, want %v / %s", next.URIs, next.Subject.CommonName, leaf.URIs, leaf.Subject.CommonName)
		}
		if !ans.RenewAfter.Equal(enroll.RenewAfter(next.NotBefore, next.NotAfter)) {
			t.Fatalf("renew_after = %v", ans.RenewAfter)
		}
		row, err := st.Certificate(t.Context(), ans.Serial)
		if err != nil || row.ParentSerial != ca.SerialHex(leaf.SerialNumber) {
			t.Fatalf("ledger row %+v, %v: want parent %s", row, err, ca.SerialHex(leaf.SerialNumber))
		}
		if !row.AttestedAt.Equal(catest.Epoch) {
			t.Fatalf("renewal attested_at = %v, want the original attestation %v", row.AttestedAt, catest.Epoch)
		}

		// Refusals.
		wantError(t, renew(cert, []byte("not a csr")), http.StatusBadRequest, "bad_csr")
		wantError(t, renew(cert, csrPEM(t, catest.WeakKey(t, "rsa1024"))), http.StatusBadRequest, "key_not_allowed")
		wantError(t, renew(signedBy(t, f.h, catest.Epoch), csrPEM(t, newKey)), http.StatusUnauthorized, "certificate_unknown")
		wantError(t, renew(signedBy(t, catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour)), catest.Epoch), csrPEM(t, newKey)), http.StatusUnauthorized, "certificate_untrusted")
		wantError(t, renew(signedBy(t, f.h, catest.Epoch.Add(-2*time.Hour)), csrPEM(t, newKey)), http.StatusUnauthorized, "certificate_expired")
		wantError(t, f.do(t, request{method: http.MethodPost, path: "/v1/renew", contentType: "application/json", body: []byte(`{"csr":"x"}`)}),
			http.StatusUnauthorized, "client_certificate_required")
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
