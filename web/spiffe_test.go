package web_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// The tests in this file use go-spiffe v2 as a third-party verifier: its
// bundle parser reads GET /v1/bundle.spiffe, its X509-SVID verifier and
// its mTLS configurations accept our worker certificates.

// fetchSPIFFEBundle gets /v1/bundle.spiffe from one listener, checks the
// answer's headers, and returns the body and go-spiffe's parse of it.
func (f *fixture) fetchSPIFFEBundle(t *testing.T, plain bool) ([]byte, *spiffebundle.Bundle) {
	t.Helper()
	r := f.do(t, request{method: http.MethodGet, path: "/v1/bundle.spiffe", plain: plain})
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/bundle.spiffe (plain %v): %d %s", plain, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", cc)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString(trustDomain), r.body)
	if err != nil {
		t.Fatalf("spiffebundle.Parse(%s): %v", r.body, err)
	}
	return r.body, b
}

// TestSPIFFEBundle: /v1/bundle.spiffe is the root in the SPIFFE bundle
// format on both listeners, as go-spiffe's parser and the JSON itself
// show (SPIFFE Trust Domain and Bundle §4, X509-SVID §6.1).
func TestSPIFFEBundle(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		overTLS, _ := f.fetchSPIFFEBundle(t, false)
		for _, plain := range []bool{false, true} {
			body, b := f.fetchSPIFFEBundle(t, plain)
			if string(body) != string(overTLS) {
				t.Errorf("plain %v: body %s differs from the HTTPS one %s", plain, body, overTLS)
			}
			if got := b.X509Authorities(); len(got) != 1 || !got[0].Equal(f.h.Root) {
				t.Errorf("plain %v: X509 authorities %d, want exactly the root", plain, len(got))
			}
			if hint, ok := b.RefreshHint(); !ok || hint != web.SPIFFERefreshHint {
				t.Errorf("plain %v: refresh hint %v (set %v), want %v", plain, hint, ok, web.SPIFFERefreshHint)
			}
			if seq, ok := b.SequenceNumber(); ok {
				t.Errorf("plain %v: spiffe_sequence %d present, want it omitted", plain, seq)
			}
			if len(b.JWTAuthorities()) != 0 {
				t.Errorf("plain %v: JWT authorities %v, want none", plain, b.JWTAuthorities())
			}
		}

		// The document itself, read without go-spiffe.
		var doc struct {
			Keys []map[string]any `json:"keys"`
			Hint *int64           `json:"spiffe_refresh_hint"`
			Seq  *uint64          `json:"spiffe_sequence"`
		}
		if err := json.Unmarshal(overTLS, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Hint == nil || *doc.Hint != 300 || doc.Seq != nil || len(doc.Keys) != 1 {
			t.Fatalf("bundle %s: want spiffe_refresh_hint 300, no spiffe_sequence, one key", overTLS)
		}
		k := doc.Keys[0]
		x5c, _ := k["x5c"].([]any)
		if k["use"] != "x509-svid" || k["kty"] != "EC" || len(x5c) != 1 || x5c[0] != base64.StdEncoding.EncodeToString(f.h.Root.Raw) {
			t.Errorf("key %v: want use x509-svid, kty EC, x5c = [root DER]", k)
		}
		if _, ok := k["kid"]; ok {
			t.Errorf("key %v has a kid; X509-SVID §6.1 forbids it", k)
		}
	})
}

// TestSPIFFEVerifyWorkerChain: go-spiffe's x509svid.Verify, against the
// parsed bundle, accepts an enrolled worker's chain as an X509-SVID with
// the worker's SPIFFE ID, and refuses foreign, expired, not yet valid and
// incomplete chains and a bundle of another trust domain.
func TestSPIFFEVerifyWorkerChain(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		_, bundle := f.fetchSPIFFEBundle(t, true)
		worker, leaf := f.workerCert(t, "default", "w-svid")
		chain := certsOf(t, worker)
		foreign := certsOf(t, signedBy(t, catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour)), catest.Epoch))
		otherTD, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("other.example.com"), mustMarshal(t, bundle))
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now()

		tests := []struct {
			name   string
			chain  []*x509.Certificate
			bundle *spiffebundle.Bundle
			at     time.Time
			wantOK bool
		}{
			{"ok/enrolled-worker", chain, bundle, now, true},
			{"ok/just-before-expiry", chain, bundle, leaf.NotAfter, true},
			{"fail/foreign-hierarchy", foreign, bundle, now, false},
			{"fail/expired", chain, bundle, leaf.NotAfter.Add(time.Second), false},
			{"fail/not-yet-valid", chain, bundle, leaf.NotBefore.Add(-time.Second), false},
			{"fail/leaf-without-intermediate", chain[:1], bundle, now, false},
			{"fail/bundle-of-another-trust-domain", chain, otherTD, now, false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				id, chains, err := x509svid.Verify(tc.chain, tc.bundle, x509svid.WithTime(tc.at))
				if !tc.wantOK {
					if err == nil {
						t.Fatalf("x509svid.Verify accepted %s at %v", id, tc.at)
					}
					return
				}
				if err != nil {
					t.Fatalf("x509svid.Verify: %v", err)
				}
				if want := "spiffe://" + trustDomain + "/worker/default/w-svid"; id.String() != want {
					t.Errorf("SPIFFE ID %s, want %s", id, want)
				}
				if len(chains) != 1 || len(chains[0]) != 3 || !chains[0][2].Equal(f.h.Root) {
					t.Errorf("verified chains %v, want one leaf-intermediate-root chain", chains)
				}
			})
		}
	})
}

// atWallClock runs the fixture at the wall clock over a hierarchy made for
// it: go-spiffe's tlsconfig verifies peers at time.Now and takes no time
// option, so certificates in a handshake it checks must be valid now.
// Every other fixture pins catest.Epoch.
func atWallClock(t *testing.T) option {
	return func(f *fixture, ec *enroll.Config, wc *web.Config) {
		now := time.Now().UTC().Truncate(time.Second)
		f.clock.now = now
		f.h = catest.NewHierarchy(t, now.Add(-time.Hour))
		ec.Issuer = f.h.Issuer(t, ca.Config{Clock: f.clock.Now, CRLBaseURL: crlBaseURL, CRLShards: crlShards,
			OCSPURLs: []string{crlBaseURL + "/ocsp"}, IssuerURLs: []string{crlBaseURL + "/v1/intermediate.crt"}})
		wc.Roots, wc.Intermediates = []*x509.Certificate{f.h.Root}, []*x509.Certificate{f.h.Intermediate}
	}
}

// TestSPIFFEMTLS: a go-spiffe mTLS server and client, configured with the
// bundle from /v1/bundle.spiffe and enrolled workers' certificates as
// their X509-SVIDs, talk over real loopback TLS; a foreign CA's
// certificate, no certificate, and an authorizer wanting another ID are
// refused.
func TestSPIFFEMTLS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st, atWallClock(t))
		_, bundle := f.fetchSPIFFEBundle(t, true)
		td := bundle.TrustDomain()
		serverCert, _ := f.workerCert(t, "default", "w-spiffe-server")
		clientCert, _ := f.workerCert(t, "default", "w-spiffe-client")
		server, client := svidOf(t, serverCert), svidOf(t, clientCert)
		foreign := svidOf(t, signedBy(t, catest.NewHierarchy(t, f.clock.Now().Add(-time.Hour)), f.clock.Now()))
		other := spiffeid.RequireFromPath(td, "/worker/default/someone-else")

		memberOf := spiffeServer(t, server, bundle, tlsconfig.AuthorizeMemberOf(td))
		onlyOther := spiffeServer(t, server, bundle, tlsconfig.AuthorizeID(other))

		tests := []struct {
			name   string
			server *spiffeTestServer
			config *tls.Config
			// refusedBy is "" when the request must succeed, else who
			// refuses the handshake: "client" (go-spiffe on the client),
			// "server" (go-spiffe's verification on the server), or "tls"
			// (crypto/tls on the server, before go-spiffe runs).
			refusedBy string
		}{
			{"ok/member-of-trust-domain", memberOf, tlsconfig.MTLSClientConfig(client, bundle, tlsconfig.AuthorizeMemberOf(td)), ""},
			{"ok/client-authorizes-server-id", memberOf, tlsconfig.MTLSClientConfig(client, bundle, tlsconfig.AuthorizeID(server.ID)), ""},
			{"fail/client-authorizes-another-id", memberOf, tlsconfig.MTLSClientConfig(client, bundle, tlsconfig.AuthorizeID(other)), "client"},
			{"fail/server-authorizes-another-id", onlyOther, tlsconfig.MTLSClientConfig(client, bundle, tlsconfig.AuthorizeMemberOf(td)), "server"},
			{"fail/foreign-ca-client", memberOf, tlsconfig.MTLSClientConfig(foreign, bundle, tlsconfig.AuthorizeMemberOf(td)), "server"},
			{"fail/no-client-certificate", memberOf, tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeMemberOf(td)), "tls"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tr := &http.Transport{TLSClientConfig: tc.config}
				defer tr.CloseIdleConnections()
				before := tc.server.refusals()
				resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(tc.server.url)
				if tc.refusedBy != "" {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("request accepted (%s), want it refused by the %s", resp.Status, tc.refusedBy)
					}
					if refusedByServer := tc.server.refusals() > before; refusedByServer != (tc.refusedBy == "server") {
						t.Fatalf("refused (%v); the server's SPIFFE verification refused: %v, want refused by the %s", err, refusedByServer, tc.refusedBy)
					}
					return
				}
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("GET: %s %s %v", resp.Status, body, err)
				}
				if string(body) != client.ID.String() {
					t.Errorf("the server saw the client as %q, want %s", body, client.ID)
				}
			})
		}
	})
}

// spiffeTestServer is an HTTPS server with go-spiffe's mTLS server
// configuration; it answers with the SPIFFE ID of the client.
type spiffeTestServer struct {
	url string
	// refused holds one element per handshake go-spiffe's verification
	// (chain to the bundle, then the authorizer) refused.
	refused chan struct{}
}

func (s *spiffeTestServer) refusals() int { return len(s.refused) }

func spiffeServer(t *testing.T, svid *x509svid.SVID, bundle *spiffebundle.Bundle, authorize tlsconfig.Authorizer) *spiffeTestServer {
	t.Helper()
	s := &spiffeTestServer{refused: make(chan struct{}, 100)}
	cfg := tlsconfig.MTLSServerConfig(svid, bundle, authorize)
	verify := cfg.VerifyPeerCertificate // go-spiffe's: chain to the bundle, then authorize
	cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err != nil {
			s.refused <- struct{}{}
		}
		return err
	}
	ln := listen(t)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, id.String())
		}),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "https://" + ln.Addr().String()
	return s
}

// svidOf parses a TLS certificate (chain and key) with go-spiffe's
// X509-SVID parser, which checks the leaf as an X509-SVID (one SPIFFE ID
// with a path, not a CA, digitalSignature without keyCertSign/cRLSign)
// and that the key matches it.
func svidOf(t *testing.T, c *tls.Certificate) *x509svid.SVID {
	t.Helper()
	var certs []byte
	for _, der := range c.Certificate {
		certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := x509svid.Parse(certs, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
	if err != nil {
		t.Fatalf("x509svid.Parse: %v", err)
	}
	return svid
}

// certsOf is a TLS certificate's chain, parsed.
func certsOf(t *testing.T, c *tls.Certificate) []*x509.Certificate {
	t.Helper()
	out := make([]*x509.Certificate, len(c.Certificate))
	for i, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = cert
	}
	return out
}

func mustMarshal(t *testing.T, b *spiffebundle.Bundle) []byte {
	t.Helper()
	doc, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
