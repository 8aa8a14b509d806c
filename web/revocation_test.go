package web_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/internal/linttest"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
)

// opensslPath is the OpenSSL command-line tool the interoperability
// tests run: an independent RFC 5280 and RFC 6960 implementation.
const opensslPath = "/usr/bin/openssl"

// opensslOCSPTolerance is openssl ocsp's -validity_period, in seconds:
// 100 years. OpenSSL 3.0 checks an answer's thisUpdate and nextUpdate
// against the wall clock (OCSP_check_validity; -attime does not reach
// that check), while the server's clock is pinned to catest.Epoch. The
// tests check those times against the server's clock themselves.
const opensslOCSPTolerance = "3153600000"

// opensslAt is openssl's -attime: the instant it verifies certificate
// chains at, a little after catest.Epoch, instead of the wall clock.
func opensslAt() string { return strconv.FormatInt(catest.Epoch.Add(10*time.Minute).Unix(), 10) }

// openssl runs openssl in dir and returns its combined output and whether
// it exited 0; openssl that cannot be run at all fails the test.
func openssl(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, opensslPath, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return string(out), err == nil
}

// writePEM writes the certificates root.pem, int.pem and leaf.pem into a
// fresh directory and returns it.
func writePEM(t *testing.T, f *fixture, leaf *x509.Certificate) string {
	t.Helper()
	dir := t.TempDir()
	for name, c := range map[string]*x509.Certificate{"root.pem": f.h.Root, "int.pem": f.h.Intermediate, "leaf.pem": leaf} {
		writeFile(t, filepath.Join(dir, name), pemBlock("CERTIFICATE", c.Raw))
	}
	return dir
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serialOf is a certificate's ledger serial.
func serialOf(c *x509.Certificate) string { return ca.SerialHex(c.SerialNumber) }

// revoke posts body to /v1/admin/revocations with a key of scope revoke
// and returns the answer, which must be 200.
func (f *fixture) revoke(t *testing.T, body map[string]any) web.RevokeResponse {
	t.Helper()
	r := f.postJSON(t, "/v1/admin/revocations", f.apiKey(t, web.ScopeRevoke), body)
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/admin/revocations %v: %d %s", body, r.status, r.body)
	}
	var a web.RevokeResponse
	decode(t, r, &a)
	if a.Revoked == nil || a.AlreadyRevoked == nil {
		t.Fatalf("answer %s: revoked and already_revoked must be arrays, not null", r.body)
	}
	return a
}

// wantSerials fails unless got holds exactly the serials of want, in any
// order.
func wantSerials(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// ocspRequest is a DER OCSP request for serial under issuer, without a
// nonce, with the CertID hashed with h.
func ocspRequest(t *testing.T, serial *big.Int, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// postOCSP sends der to POST /ocsp on the plain listener.
func (f *fixture) postOCSP(t *testing.T, der []byte) response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: "/ocsp", plain: true, contentType: "application/ocsp-request", body: der})
}

// ocspAnswer checks that r is an OCSP answer over HTTP and parses it with
// golang.org/x/crypto/ocsp, verifying its signature by a responder
// certificate the intermediate issued.
func (f *fixture) ocspAnswer(t *testing.T, r response) (*ocsp.Response, error) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("OCSP: HTTP status %d, body %q; OCSP errors must be OCSP answers with status 200", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/ocsp-response" {
		t.Fatalf("OCSP: Content-Type %q, want application/ocsp-response", ct)
	}
	return ocsp.ParseResponse(r.body, f.h.Intermediate)
}

// mustOCSP is ocspAnswer for an answer that must be successful, about
// serial, signed by a delegated responder.
func (f *fixture) mustOCSP(t *testing.T, r response, serial *big.Int) *ocsp.Response {
	t.Helper()
	resp, err := f.ocspAnswer(t, r)
	if err != nil {
		t.Fatalf("OCSP answer does not parse or verify: %v", err)
	}
	if resp.SerialNumber.Cmp(serial) != 0 {
		t.Fatalf("OCSP answer is about serial %x, want %x", resp.SerialNumber, serial)
	}
	if resp.Certificate == nil {
		t.Fatal("OCSP answer carries no responder certificate")
	}
	return resp
}

// wantOCSPError fails unless r is an unsuccessful OCSP answer of status
// st (RFC 6960 §4.2.1), not cacheable.
func (f *fixture) wantOCSPError(t *testing.T, r response, st ocsp.ResponseStatus) {
	t.Helper()
	_, err := f.ocspAnswer(t, r)
	var re ocsp.ResponseError
	if !errors.As(err, &re) || re.Status != st {
		t.Fatalf("OCSP answer: %v, want a ResponseError %s", err, st)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("OCSP error answer Cache-Control %q, want no-store", cc)
	}
}

// wantOCSPCaching checks the RFC 5019 §6.2 caching headers of a good,
// revoked or unknown answer against its signed times.
func wantOCSPCaching(t *testing.T, r response, resp *ocsp.Response) {
	t.Helper()
	if got, want := r.header.Get("Last-Modified"), resp.ThisUpdate.UTC().Format(http.TimeFormat); got != want {
		t.Errorf("Last-Modified %q, want thisUpdate %q", got, want)
	}
	if got, want := r.header.Get("Expires"), resp.NextUpdate.UTC().Format(http.TimeFormat); got != want {
		t.Errorf("Expires %q, want nextUpdate %q", got, want)
	}
	if etag := r.header.Get("ETag"); len(etag) < 3 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Errorf("ETag %q, want a strong quoted entity tag", etag)
	}
	wantCacheControl(t, r, resp.NextUpdate.Sub(resp.ThisUpdate), "public", "no-transform", "must-revalidate")
}

// wantCacheControl checks that Cache-Control has a positive max-age of at
// most limit and each of the directives.
func wantCacheControl(t *testing.T, r response, limit time.Duration, directives ...string) {
	t.Helper()
	cc := r.header.Get("Cache-Control")
	have := map[string]string{}
	for _, d := range strings.Split(cc, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		have[k] = v
	}
	for _, d := range directives {
		if _, ok := have[d]; !ok {
			t.Errorf("Cache-Control %q lacks %s", cc, d)
		}
	}
	age, err := strconv.Atoi(have["max-age"])
	if err != nil || age <= 0 || time.Duration(age)*time.Second > limit {
		t.Errorf("Cache-Control %q: max-age must be positive and at most %v", cc, limit)
	}
}

// crlPath is the path of the certificate's CRL shard, from its CRL
// distribution point, and the shard number.
func crlPath(t *testing.T, c *x509.Certificate) (string, int) {
	t.Helper()
	if len(c.CRLDistributionPoints) != 1 {
		t.Fatalf("CRL distribution points %v, want one", c.CRLDistributionPoints)
	}
	path, ok := strings.CutPrefix(c.CRLDistributionPoints[0], crlBaseURL)
	name, ok2 := strings.CutPrefix(path, "/crl/")
	name, ok3 := strings.CutSuffix(name, ".crl")
	shard, err := strconv.Atoi(name)
	if !ok || !ok2 || !ok3 || err != nil || shard < 0 || shard >= crlShards {
		t.Fatalf("CRL distribution point %q is not %s/crl/<shard>.crl", c.CRLDistributionPoints[0], crlBaseURL)
	}
	return path, shard
}

// getCRL fetches a shard's CRL from the plain listener and checks its
// headers and its signature by the intermediate.
func (f *fixture) getCRL(t *testing.T, shard int) (*x509.RevocationList, response) {
	t.Helper()
	r := f.do(t, request{method: http.MethodGet, path: fmt.Sprintf("/crl/%d.crl", shard), plain: true})
	if r.status != http.StatusOK {
		t.Fatalf("GET /crl/%d.crl: %d %s", shard, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/pkix-crl" {
		t.Fatalf("CRL Content-Type %q, want application/pkix-crl", ct)
	}
	crl, err := x509.ParseRevocationList(r.body)
	if err != nil {
		t.Fatalf("CRL of shard %d: %v", shard, err)
	}
	if err := crl.CheckSignatureFrom(f.h.Intermediate); err != nil {
		t.Fatalf("CRL of shard %d: %v", shard, err)
	}
	return crl, r
}

// crlAfter polls a shard's CRL, for at most five seconds, until its
// cRLNumber is above number: a revocation rebuilds the shard in the
// background.
func (f *fixture) crlAfter(t *testing.T, shard int, number *big.Int) (*x509.RevocationList, response) {
	t.Helper()
	const step, tries = 20 * time.Millisecond, 250
	for range tries {
		crl, r := f.getCRL(t, shard)
		if crl.Number.Cmp(number) > 0 {
			return crl, r
		}
		time.Sleep(step)
	}
	t.Fatalf("CRL of shard %d still has number %v %v after a revocation", shard, number, step*tries)
	return nil, response{}
}

// crlEntry finds serial in crl.
func crlEntry(crl *x509.RevocationList, serial *big.Int) (x509.RevocationListEntry, bool) {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return e, true
		}
	}
	return x509.RevocationListEntry{}, false
}

// revocations is the ledger's revocation state: the certificate.revoked
// audit events and the revocation time of each given serial.
func (f *fixture) revocations(t *testing.T, serials ...string) string {
	t.Helper()
	ctx := context.Background()
	events, err := f.st.AuditEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range events {
		if e.Action == "certificate.revoked" {
			fmt.Fprintf(&b, "event %s by %s; ", e.Target, e.Actor)
		}
	}
	for _, s := range serials {
		row, err := f.st.Certificate(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s revoked at %v reason %v; ", s, row.RevokedAt, row.RevocationReason)
	}
	return b.String()
}

// TestOCSPWithOpenSSL: openssl ocsp, over real HTTP, finds a fresh leaf
// good and verifies the answer to the root (with and without a nonce,
// with SHA-1 and SHA-256 CertIDs), then revoked with its reason once an
// operator revokes it: the cached "good" is dropped at once.
func TestOCSPWithOpenSSL(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-ocsp")
		dir := writePEM(t, f, leaf)
		check := func(t *testing.T, want string, extra ...string) string {
			t.Helper()
			// A digest option must come before -cert.
			args := append(append([]string{"ocsp"}, extra...), "-issuer", "int.pem", "-cert", "leaf.pem", "-url", f.httpURL+"/ocsp",
				"-CAfile", "root.pem", "-attime", opensslAt(), "-validity_period", opensslOCSPTolerance)
			out, ok := openssl(t, dir, args...)
			if !ok {
				t.Fatalf("openssl %s failed:\n%s", strings.Join(args, " "), out)
			}
			for _, w := range []string{"leaf.pem: " + want, "Response verify OK"} {
				if !strings.Contains(out, w) {
					t.Fatalf("openssl ocsp %v: output lacks %q:\n%s", extra, w, out)
				}
			}
			for _, bad := range []string{"WARNING", "error", "Nonce Verify"} {
				if strings.Contains(out, bad) {
					t.Fatalf("openssl ocsp %v: output has %q:\n%s", extra, bad, out)
				}
			}
			return out
		}
		t.Run("ok/nonce-echoed", func(t *testing.T) {
			out := check(t, "good", "-resp_text")
			_, resp, _ := strings.Cut(out, "OCSP Response Data:")
			if !strings.Contains(resp, "OCSP Nonce") {
				t.Fatalf("the answer has no nonce extension:\n%s", out)
			}
		})
		for _, tc := range []struct {
			name  string
			extra []string
		}{
			{"ok/default-nonce", nil},
			{"ok/explicit-nonce", []string{"-nonce"}},
			{"ok/no-nonce", []string{"-no_nonce"}},
			{"ok/sha256-certid", []string{"-sha256"}},
			{"ok/sha256-certid-no-nonce", []string{"-sha256", "-no_nonce"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				check(t, "good", tc.extra...)
			})
		}

		// The answer's signed times are the server's, not the wall clock's.
		check(t, "good", "-no_nonce", "-respout", "good.der")
		der, err := os.ReadFile(filepath.Join(dir, "good.der"))
		if err != nil {
			t.Fatal(err)
		}
		good, err := ocsp.ParseResponseForCert(der, leaf, f.h.Intermediate)
		if err != nil {
			t.Fatal(err)
		}
		if good.Status != ocsp.Good || !good.ThisUpdate.Equal(catest.Epoch) || !good.ProducedAt.Equal(catest.Epoch) ||
			!good.NextUpdate.Equal(catest.Epoch.Add(revocation.DefaultOCSPValidity)) {
			t.Fatalf("answer: status %d, thisUpdate %v, producedAt %v, nextUpdate %v; want good at %v for %v",
				good.Status, good.ThisUpdate, good.ProducedAt, good.NextUpdate, catest.Epoch, revocation.DefaultOCSPValidity)
		}

		f.clock.Add(time.Minute)
		a := f.revoke(t, map[string]any{"serial": serialOf(leaf), "reason": "keyCompromise"})
		wantSerials(t, "revoked", a.Revoked, serialOf(leaf))
		for _, extra := range [][]string{{"-no_nonce"}, nil, {"-sha256", "-no_nonce"}} {
			out := check(t, "revoked", extra...)
			if !strings.Contains(out, "Reason: keyCompromise") {
				t.Fatalf("openssl ocsp %v after revocation: no keyCompromise reason:\n%s", extra, out)
			}
		}
	})
}

// TestOCSPGet: the GET form (RFC 6960 Appendix A.1) answers like POST,
// with RFC 5019 caching headers and 304 for a matching If-None-Match;
// base64 with '+', '/' and "//" decodes whether sent raw or escaped, and
// a request with a nonce gets an answer caches must not keep.
func TestOCSPGet(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-ocsp-get")
		get := func(t *testing.T, path string, headers map[string]string) response {
			t.Helper()
			return f.do(t, request{method: http.MethodGet, path: path, plain: true, headers: headers})
		}

		// A request openssl builds, sent by GET.
		dir := writePEM(t, f, leaf)
		if out, ok := openssl(t, dir, "ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"); !ok {
			t.Fatalf("openssl ocsp -reqout:\n%s", out)
		}
		der, err := os.ReadFile(filepath.Join(dir, "req.der"))
		if err != nil {
			t.Fatal(err)
		}
		path := "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
		r := get(t, path, nil)
		resp := f.mustOCSP(t, r, leaf.SerialNumber)
		if resp.Status != ocsp.Good {
			t.Fatalf("GET %s: status %d, want good", path, resp.Status)
		}
		wantOCSPCaching(t, r, resp)
		etag := r.header.Get("ETag")

		t.Run("ok/if-none-match-304", func(t *testing.T) {
			r := get(t, path, map[string]string{"If-None-Match": etag})
			if r.status != http.StatusNotModified || len(r.body) != 0 || r.header.Get("ETag") != etag {
				t.Fatalf("If-None-Match %s: %d, ETag %q, %d bytes; want 304 with the ETag and no body", etag, r.status, r.header.Get("ETag"), len(r.body))
			}
		})
		t.Run("ok/if-none-match-other-200", func(t *testing.T) {
			r := get(t, path, map[string]string{"If-None-Match": `"other"`})
			if r.status != http.StatusOK || !bytes.Equal(r.body, get(t, path, nil).body) {
				t.Fatalf("If-None-Match another tag: %d, want 200 with the cached answer", r.status)
			}
		})
		t.Run("ok/post-same-answer-never-304", func(t *testing.T) {
			r := f.do(t, request{method: http.MethodPost, path: "/ocsp", plain: true, contentType: "application/ocsp-request",
				body: der, headers: map[string]string{"If-None-Match": etag}})
			if r.status != http.StatusOK || r.header.Get("ETag") != etag {
				t.Fatalf("POST with If-None-Match: %d, ETag %q; want 200 with the same answer", r.status, r.header.Get("ETag"))
			}
		})
		t.Run("ok/nonce-not-cacheable", func(t *testing.T) {
			if out, ok := openssl(t, dir, "ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-nonce", "-reqout", "nonce.der"); !ok {
				t.Fatalf("openssl ocsp -reqout:\n%s", out)
			}
			der, err := os.ReadFile(filepath.Join(dir, "nonce.der"))
			if err != nil {
				t.Fatal(err)
			}
			r := get(t, "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(der)), nil)
			if resp := f.mustOCSP(t, r, leaf.SerialNumber); resp.Status != ocsp.Good {
				t.Fatalf("status %d, want good", resp.Status)
			}
			if cc, et := r.header.Get("Cache-Control"), r.header.Get("ETag"); cc != "no-store" || et != "" {
				t.Fatalf("answer with a nonce: Cache-Control %q, ETag %q; want no-store and no ETag", cc, et)
			}
		})

		// Requests for made-up serials whose base64 has the characters
		// URL handling may mangle. A DER request starts with 0x30, so its
		// base64 starts with 'M': a '/' can never directly follow
		// "/ocsp/", but "//" inside the path can.
		rng := rand.New(rand.NewPCG(1, 2))
		find := func(t *testing.T, want func(b64 string) bool) (*big.Int, string) {
			t.Helper()
			for range 1 << 16 {
				b := make([]byte, 16)
				for i := range b {
					b[i] = byte(rng.UintN(256))
				}
				b[0] = b[0]&0x7f | 0x01
				serial := new(big.Int).SetBytes(b)
				b64 := base64.StdEncoding.EncodeToString(ocspRequest(t, serial, f.h.Intermediate, crypto.SHA1))
				if want(b64) {
					return serial, b64
				}
			}
			t.Fatal("no serial found whose request has the wanted base64")
			return nil, ""
		}
		double, doubleB64 := find(t, func(s string) bool { return strings.Contains(s, "//") })
		plus, plusB64 := find(t, func(s string) bool { return strings.Contains(s, "+") })
		slash, slashB64 := find(t, func(s string) bool { return strings.Contains(s, "/") })
		padded, paddedB64 := find(t, func(s string) bool { return strings.HasSuffix(s, "=") })
		leafB64 := base64.StdEncoding.EncodeToString(der)
		for _, tc := range []struct {
			name   string
			serial *big.Int
			path   string
			want   int
		}{
			{"ok/leaf-raw", leaf.SerialNumber, "/ocsp/" + leafB64, ocsp.Good},
			{"ok/leaf-after-double-slash", leaf.SerialNumber, "/ocsp//" + leafB64, ocsp.Good},
			{"ok/leaf-query-escaped", leaf.SerialNumber, "/ocsp/" + url.QueryEscape(leafB64), ocsp.Good},
			{"ok/double-slash-raw", double, "/ocsp/" + doubleB64, ocsp.Unknown},
			{"ok/double-slash-escaped", double, "/ocsp/" + strings.ReplaceAll(doubleB64, "/", "%2F"), ocsp.Unknown},
			{"ok/slash-raw", slash, "/ocsp/" + slashB64, ocsp.Unknown},
			{"ok/slash-escaped-lowercase", slash, "/ocsp/" + strings.ReplaceAll(slashB64, "/", "%2f"), ocsp.Unknown},
			{"ok/plus-raw", plus, "/ocsp/" + plusB64, ocsp.Unknown},
			{"ok/plus-escaped", plus, "/ocsp/" + strings.ReplaceAll(plusB64, "+", "%2B"), ocsp.Unknown},
			{"ok/padding-escaped", padded, "/ocsp/" + strings.ReplaceAll(paddedB64, "=", "%3D"), ocsp.Unknown},
			{"ok/padding-dropped", padded, "/ocsp/" + strings.TrimRight(paddedB64, "="), ocsp.Unknown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := get(t, tc.path, nil)
				resp := f.mustOCSP(t, r, tc.serial)
				if resp.Status != tc.want {
					t.Fatalf("GET %s: status %d, want %d", tc.path, resp.Status, tc.want)
				}
				wantOCSPCaching(t, r, resp)
			})
		}
	})
}

// TestCRLWithOpenSSL: openssl verify -crl_check accepts a fresh leaf
// against its shard's CRL, fetched from the plain listener at the URL
// its CRL distribution point names, and refuses it as revoked (error 23)
// once the rebuilt CRL lists it; the CRL's scope always matches (never
// error 44). The CRL route's caching headers and refusals.
func TestCRLWithOpenSSL(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-crl")
		dir := writePEM(t, f, leaf)
		path, shard := crlPath(t, leaf)
		verify := func(t *testing.T, crlDER []byte) (string, bool) {
			t.Helper()
			writeFile(t, filepath.Join(dir, "crl.pem"), pemBlock("X509 CRL", crlDER))
			out, ok := openssl(t, dir, "verify", "-crl_check", "-attime", opensslAt(), "-CAfile", "root.pem",
				"-untrusted", "int.pem", "-CRLfile", "crl.pem", "leaf.pem")
			if strings.Contains(out, "error 44") {
				t.Fatalf("openssl verify: the CRL's scope does not match the certificate (error 44):\n%s", out)
			}
			return out, ok
		}

		r := f.do(t, request{method: http.MethodGet, path: path, plain: true})
		crl, _ := f.getCRL(t, shard)
		if r.status != http.StatusOK || !bytes.Equal(r.body, crl.Raw) {
			t.Fatalf("GET %s (the leaf's CDP): %d", path, r.status)
		}
		if out, ok := verify(t, r.body); !ok || !strings.Contains(out, "leaf.pem: OK") {
			t.Fatalf("openssl verify before revocation (ok %v):\n%s", ok, out)
		}

		t.Run("ok/caching-headers", func(t *testing.T) {
			if got, want := r.header.Get("Last-Modified"), crl.ThisUpdate.UTC().Format(http.TimeFormat); got != want {
				t.Errorf("Last-Modified %q, want thisUpdate %q", got, want)
			}
			if got, want := r.header.Get("Expires"), crl.NextUpdate.UTC().Format(http.TimeFormat); got != want {
				t.Errorf("Expires %q, want nextUpdate %q", got, want)
			}
			wantCacheControl(t, r, crl.NextUpdate.Sub(crl.ThisUpdate), "public", "no-transform", "must-revalidate")
			etag := r.header.Get("ETag")
			if len(etag) < 3 || !strings.HasPrefix(etag, `"`) {
				t.Fatalf("ETag %q, want a strong quoted entity tag", etag)
			}
			for _, h := range []map[string]string{
				{"If-None-Match": etag},
				{"If-None-Match": `"other", ` + etag},
				{"If-Modified-Since": r.header.Get("Last-Modified")},
			} {
				r := f.do(t, request{method: http.MethodGet, path: path, plain: true, headers: h})
				if r.status != http.StatusNotModified || len(r.body) != 0 {
					t.Errorf("%v: %d with %d bytes, want 304 without a body", h, r.status, len(r.body))
				}
			}
			if r := f.do(t, request{method: http.MethodGet, path: path, plain: true, headers: map[string]string{"If-None-Match": `"other"`}}); r.status != http.StatusOK {
				t.Errorf("If-None-Match another tag: %d, want 200", r.status)
			}
		})
		t.Run("fail/no-such-shard", func(t *testing.T) {
			for _, p := range []string{"/crl/99.crl", "/crl/x.crl", fmt.Sprintf("/crl/%d.crl", crlShards), "/crl/-1.crl", "/crl/01.crl", "/crl/1", "/crl/1.crl.pem"} {
				wantError(t, f.do(t, request{method: http.MethodGet, path: p, plain: true}), http.StatusNotFound, "not_found")
			}
		})

		f.clock.Add(time.Minute)
		f.revoke(t, map[string]any{"serial": serialOf(leaf), "reason": "keyCompromise"})
		rebuilt, r2 := f.crlAfter(t, shard, crl.Number)
		e, ok := crlEntry(rebuilt, leaf.SerialNumber)
		if !ok || e.ReasonCode != int(revocation.KeyCompromise) || !e.RevocationTime.Equal(catest.Epoch.Add(time.Minute)) {
			t.Fatalf("rebuilt CRL entry %+v (listed %v), want keyCompromise at %v", e, ok, catest.Epoch.Add(time.Minute))
		}
		if r2.header.Get("ETag") == r.header.Get("ETag") {
			t.Fatalf("rebuilt CRL has the old ETag %s", r.header.Get("ETag"))
		}
		if r := f.do(t, request{method: http.MethodGet, path: path, plain: true, headers: map[string]string{"If-None-Match": r.header.Get("ETag")}}); r.status != http.StatusOK {
			t.Fatalf("If-None-Match the old CRL's ETag: %d, want 200 with the new CRL", r.status)
		}
		out, ok := verify(t, r2.body)
		if ok || !strings.Contains(out, "error 23") || !strings.Contains(out, "certificate revoked") {
			t.Fatalf("openssl verify after revocation (ok %v), want error 23 certificate revoked:\n%s", ok, out)
		}
	})
}

// TestRevocationZlint: zlint finds no error in the root, the
// intermediate, a worker leaf, the server certificate, the delegated OCSP
// responder certificate, or any CRL shard, empty or listing revocations
// with every reason workerca records and an invalidity date.
func TestRevocationZlint(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-lint")
		r := f.postOCSP(t, ocspRequest(t, leaf.SerialNumber, f.h.Intermediate, crypto.SHA256))
		responder := f.mustOCSP(t, r, leaf.SerialNumber).Certificate
		server := f.do(t, request{method: http.MethodGet, path: "/healthz"}).tls.PeerCertificates[0]
		for name, c := range map[string]*x509.Certificate{
			"root": f.h.Root, "intermediate": f.h.Intermediate, "leaf": leaf, "server": server, "responder": responder,
		} {
			t.Run("certificate/"+name, func(t *testing.T) { linttest.Certificate(t, c) })
		}

		before := make([]*big.Int, crlShards)
		for shard := range crlShards {
			crl, _ := f.getCRL(t, shard)
			before[shard] = crl.Number
			t.Run(fmt.Sprintf("crl/empty-%d", shard), func(t *testing.T) { linttest.CRL(t, crl.Raw) })
		}
		f.clock.Add(time.Minute)
		invalid := catest.Epoch.Add(-30 * time.Minute)
		touched := map[int]bool{}
		for i, reason := range revocation.ReasonNames() {
			c := f.mustEnroll(t, "default", fmt.Sprintf("w-lint-%d", i))
			body := map[string]any{"serial": serialOf(c), "reason": reason}
			if reason == "keyCompromise" {
				body["invalidity_date"] = invalid
			}
			f.revoke(t, body)
			_, shard := crlPath(t, c)
			touched[shard] = true
		}
		for shard := range crlShards {
			crl, _ := f.getCRL(t, shard)
			if touched[shard] {
				crl, _ = f.crlAfter(t, shard, before[shard])
			}
			t.Run(fmt.Sprintf("crl/shard-%d", shard), func(t *testing.T) { linttest.CRL(t, crl.Raw) })
		}
	})
}

// TestRevocationByWorker: a worker revokes its own certificate over mTLS
// for a reason workers may give, not for another; OCSP then says revoked
// with that reason, and the revoked certificate can neither renew nor
// revoke again.
func TestRevocationByWorker(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		cert, leaf := f.workerCert(t, "default", "w-self")
		serial := serialOf(leaf)
		revokeOwn := func(t *testing.T, body string) response {
			t.Helper()
			return f.do(t, request{method: http.MethodPost, path: "/v1/revoke", cert: cert, contentType: "application/json", body: []byte(body)})
		}
		unchanged := f.revocations(t, serial)
		for _, tc := range []struct {
			name, body string
			status     int
			code       string
		}{
			{name: "fail/reason-affiliation-changed", body: `{"reason":"affiliationChanged"}`, status: http.StatusForbidden, code: "revocation_not_allowed"},
			{name: "fail/reason-unspecified", body: `{}`, status: http.StatusForbidden, code: "revocation_not_allowed"},
			{name: "fail/reason-ca-compromise", body: `{"reason":"cACompromise"}`, status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/reason-unknown", body: `{"reason":"stolen"}`, status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/serial-field", body: `{"reason":"superseded","serial":"01"}`, status: http.StatusBadRequest, code: "invalid_json"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, revokeOwn(t, tc.body), tc.status, tc.code)
				if got := f.revocations(t, serial); got != unchanged {
					t.Fatalf("ledger changed: %s, was %s", got, unchanged)
				}
			})
		}
		t.Run("fail/api-key", func(t *testing.T) {
			r := f.do(t, request{method: http.MethodPost, path: "/v1/revoke", auth: f.admin, contentType: "application/json", body: []byte(`{"reason":"superseded"}`)})
			wantError(t, r, http.StatusForbidden, "api_key_not_allowed")
		})

		f.clock.Add(time.Minute)
		r := revokeOwn(t, `{"reason":"superseded"}`)
		if r.status != http.StatusOK {
			t.Fatalf("POST /v1/revoke superseded: %d %s", r.status, r.body)
		}
		var a web.RevokeResponse
		decode(t, r, &a)
		wantSerials(t, "revoked", a.Revoked, serial)
		wantSerials(t, "already_revoked", a.AlreadyRevoked)
		resp := f.mustOCSP(t, f.postOCSP(t, ocspRequest(t, leaf.SerialNumber, f.h.Intermediate, crypto.SHA1)), leaf.SerialNumber)
		if resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.Superseded || !resp.RevokedAt.Equal(catest.Epoch.Add(time.Minute)) {
			t.Fatalf("OCSP after self-revocation: status %d reason %d at %v, want revoked superseded at %v",
				resp.Status, resp.RevocationReason, resp.RevokedAt, catest.Epoch.Add(time.Minute))
		}
		events, err := st.AuditEvents(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(events, func(e store.AuditEvent) bool { return e.Action == "certificate.revoked" }); i < 0 ||
			events[i].Target != serial || events[i].Actor != "worker:"+serial {
			t.Fatalf("audit events %+v, want certificate.revoked of %s by worker:%s", events, serial, serial)
		}

		renew := `{"csr":` + jsonString(string(csrPEM(t, catest.Key(t, ca.KeyP256)))) + `}`
		wantError(t, f.do(t, request{method: http.MethodPost, path: "/v1/renew", cert: cert, contentType: "application/json", body: []byte(renew)}),
			http.StatusUnauthorized, "certificate_revoked")
		wantError(t, revokeOwn(t, `{"reason":"keyCompromise"}`), http.StatusUnauthorized, "certificate_revoked")
	})
}

// TestOCSPRefusals: undecodable, truncated, empty, oversized and
// mistyped requests get an OCSP malformedRequest answer (status 200, not
// JSON); a request about another CA's certificates gets unauthorized;
// other methods are refused.
func TestOCSPRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-ocsp-bad")
		good := ocspRequest(t, leaf.SerialNumber, f.h.Intermediate, crypto.SHA1)
		other := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
		foreign := ocspRequest(t, leaf.SerialNumber, other.Intermediate, crypto.SHA1)
		oversized := bytes.Repeat(good, 3<<10/len(good)+1)[:3<<10]
		b64 := func(b []byte) string { return url.PathEscape(base64.StdEncoding.EncodeToString(b)) }
		const ct = "application/ocsp-request"
		for _, tc := range []struct {
			name, method, path, contentType string
			body                            []byte
			want                            ocsp.ResponseStatus
		}{
			{"fail/get-not-base64", http.MethodGet, "/ocsp/@@not*base64!!", "", nil, ocsp.Malformed},
			{"fail/get-base64-garbage", http.MethodGet, "/ocsp/" + b64([]byte("hello, OCSP")), "", nil, ocsp.Malformed},
			{"fail/get-truncated", http.MethodGet, "/ocsp/" + b64(good[:len(good)/2]), "", nil, ocsp.Malformed},
			{"fail/get-empty", http.MethodGet, "/ocsp/", "", nil, ocsp.Malformed},
			{"fail/get-3KiB", http.MethodGet, "/ocsp/" + b64(oversized), "", nil, ocsp.Malformed},
			{"fail/get-foreign-issuer", http.MethodGet, "/ocsp/" + b64(foreign), "", nil, ocsp.Unauthorized},
			{"fail/post-garbage", http.MethodPost, "/ocsp", ct, []byte("hello, OCSP"), ocsp.Malformed},
			{"fail/post-truncated", http.MethodPost, "/ocsp", ct, good[:len(good)-3], ocsp.Malformed},
			{"fail/post-trailing-data", http.MethodPost, "/ocsp", ct, append(slices.Clone(good), 0), ocsp.Malformed},
			{"fail/post-empty", http.MethodPost, "/ocsp", ct, []byte{}, ocsp.Malformed},
			{"fail/post-wrong-content-type", http.MethodPost, "/ocsp", "application/octet-stream", good, ocsp.Malformed},
			{"fail/post-no-content-type", http.MethodPost, "/ocsp", "", good, ocsp.Malformed},
			{"fail/post-3KiB", http.MethodPost, "/ocsp", ct, oversized, ocsp.Malformed},
			{"fail/post-foreign-issuer", http.MethodPost, "/ocsp", ct, foreign, ocsp.Unauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := f.do(t, request{method: tc.method, path: tc.path, plain: true, contentType: tc.contentType, body: tc.body})
				f.wantOCSPError(t, r, tc.want)
			})
		}
		t.Run("fail/methods", func(t *testing.T) {
			for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
				wantError(t, f.do(t, request{method: m, path: "/ocsp", plain: true, contentType: "application/ocsp-request", body: good}),
					http.StatusMethodNotAllowed, "method_not_allowed")
			}
		})
		// The refusals did not poison the cache: the real request is good.
		if resp := f.mustOCSP(t, f.postOCSP(t, good), leaf.SerialNumber); resp.Status != ocsp.Good {
			t.Fatalf("status %d, want good", resp.Status)
		}
	})
}

// TestStatusRefusals: malformed serials and instants are refused with
// invalid_request, and so is an instant after the server's clock.
func TestStatusRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := serialOf(f.mustEnroll(t, "default", "w-status-bad"))
		for _, tc := range []struct{ name, path string }{
			{"fail/serial-not-hex", "/v1/status/zz"},
			{"fail/serial-zero", "/v1/status/0"},
			{"fail/serial-too-long", "/v1/status/" + strings.Repeat("1", 41)},
			{"fail/at-not-a-time", "/v1/status/" + leaf + "?at=notatime"},
			{"fail/at-no-zone", "/v1/status/" + leaf + "?at=2026-11-01T12:00:00"},
			{"fail/at-future", "/v1/status/" + leaf + "?at=" + url.QueryEscape(catest.Epoch.Add(time.Hour).Format(time.RFC3339))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, f.do(t, request{method: http.MethodGet, path: tc.path, plain: true}), http.StatusBadRequest, "invalid_request")
			})
		}
	})
}

// TestRevocationRefusals: POST /v1/admin/revocations refuses bad
// selectors, reasons and dates, unknown serials, keys without scope
// revoke, worker certificates and the plain listener, and each refusal
// leaves the ledger as it was.
func TestRevocationRefusals(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		cert, leaf := f.workerCert(t, "default", "w-refuse")
		serial := serialOf(leaf)
		revoker, reader := f.apiKey(t, web.ScopeRevoke), f.apiKey(t, web.ScopeRead, web.ScopeTokensCreate)
		unchanged := f.revocations(t, serial)
		future := catest.Epoch.Add(time.Hour).Format(time.RFC3339)
		bySerial := func(rest string) string { return `{"serial":"` + serial + `",` + rest + `}` }
		for _, tc := range []struct {
			name, auth, body string
			// worker presents the worker's certificate; plain uses the
			// plain HTTP listener.
			worker, plain bool
			status        int
			code          string
		}{
			{name: "fail/no-selector", auth: revoker, body: `{"reason":"keyCompromise"}`, status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/empty-selector", auth: revoker, body: `{"serial":"","reason":"keyCompromise"}`, status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/two-selectors", auth: revoker, body: bySerial(`"worker_id":"w-refuse","reason":"keyCompromise"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/unknown-reason", auth: revoker, body: bySerial(`"reason":"stolen"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/reason-code-number", auth: revoker, body: bySerial(`"reason":1`), status: http.StatusBadRequest, code: "invalid_json"},
			{name: "fail/reason-wrong-case", auth: revoker, body: bySerial(`"reason":"KeyCompromise"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/reason-ca-compromise", auth: revoker, body: bySerial(`"reason":"cACompromise"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/reason-certificate-hold", auth: revoker, body: bySerial(`"reason":"certificateHold"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/invalidity-date-future", auth: revoker, body: bySerial(`"reason":"keyCompromise","invalidity_date":"` + future + `"`), status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/serial-not-hex", auth: revoker, body: `{"serial":"xyz","reason":"keyCompromise"}`, status: http.StatusBadRequest, code: "invalid_request"},
			{name: "fail/unknown-field", auth: revoker, body: bySerial(`"reason":"keyCompromise","force":true`), status: http.StatusBadRequest, code: "invalid_json"},
			{name: "fail/unknown-serial", auth: revoker, body: `{"serial":"7fffffffffffffffffffffffffffffffffffffff","reason":"keyCompromise"}`, status: http.StatusNotFound, code: "certificate_not_found"},
			{name: "fail/no-api-key", body: bySerial(`"reason":"keyCompromise"`), status: http.StatusUnauthorized, code: "unauthenticated"},
			{name: "fail/no-revoke-scope", auth: reader, body: bySerial(`"reason":"keyCompromise"`), status: http.StatusForbidden, code: "insufficient_scope"},
			{name: "fail/worker-certificate", auth: revoker, worker: true, body: bySerial(`"reason":"keyCompromise"`), status: http.StatusForbidden, code: "worker_not_allowed"},
			{name: "fail/plain-listener", auth: revoker, plain: true, body: bySerial(`"reason":"keyCompromise"`), status: http.StatusForbidden, code: "https_required"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := request{method: http.MethodPost, path: "/v1/admin/revocations", auth: tc.auth, plain: tc.plain, contentType: "application/json", body: []byte(tc.body)}
				if tc.worker {
					req.cert = cert
				}
				wantError(t, f.do(t, req), tc.status, tc.code)
				if got := f.revocations(t, serial); got != unchanged {
					t.Fatalf("ledger changed: %s, was %s", got, unchanged)
				}
			})
		}
		// The refusals left the certificate good.
		if resp := f.mustOCSP(t, f.postOCSP(t, ocspRequest(t, leaf.SerialNumber, f.h.Intermediate, crypto.SHA1)), leaf.SerialNumber); resp.Status != ocsp.Good {
			t.Fatalf("OCSP status %d after refusals, want good", resp.Status)
		}
	})
}

// statusOf fetches GET /v1/status/<serial><query> and verifies the JWS
// with the key GET /v1/status/keys publishes.
func (f *fixture) statusOf(t *testing.T, serial, query string) revocation.Status {
	t.Helper()
	kr := f.do(t, request{method: http.MethodGet, path: "/v1/status/keys", plain: true})
	if kr.status != http.StatusOK || kr.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("GET /v1/status/keys: %d %q %s", kr.status, kr.header.Get("Content-Type"), kr.body)
	}
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(kr.body, &keys); err != nil {
		t.Fatalf("JWKS %s: %v", kr.body, err)
	}
	if len(keys.Keys) != 1 || !keys.Keys[0].IsPublic() || !keys.Keys[0].Valid() {
		t.Fatalf("JWKS %s: want one valid public key", kr.body)
	}
	if pub, ok := f.statusKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(keys.Keys[0].Key) {
		t.Fatalf("JWKS key is not the status key")
	}

	r := f.do(t, request{method: http.MethodGet, path: "/v1/status/" + serial + query, plain: true})
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/status/%s%s: %d %s", serial, query, r.status, r.body)
	}
	if ct, cc := r.header.Get("Content-Type"), r.header.Get("Cache-Control"); ct != "application/jose" || cc != "no-store" {
		t.Fatalf("status answer Content-Type %q, Cache-Control %q; want application/jose, no-store", ct, cc)
	}
	jws, err := jose.ParseSignedCompact(string(r.body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("status answer %q is not a compact ES256 JWS: %v", r.body, err)
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != keys.Keys[0].KeyID || h.ExtraHeaders[jose.HeaderType] != revocation.StatusMediaType {
		t.Fatalf("JWS header kid %q typ %v, want kid %q typ %s", h.KeyID, h.ExtraHeaders[jose.HeaderType], keys.Keys[0].KeyID, revocation.StatusMediaType)
	}
	found := keys.Key(h.KeyID)
	if len(found) != 1 {
		t.Fatalf("no JWKS key with kid %q", h.KeyID)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		t.Fatalf("status answer does not verify with the published key: %v", err)
	}
	var st revocation.Status
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("status payload %s: %v", payload, err)
	}
	return st
}

// TestStatusJWS: the signed status of a certificate, verified with the
// published JWKS, is good before its revocation and revoked after; asked
// for an instant before the revocation it is good, unless a key
// compromise's invalidity date precedes that instant.
func TestStatusJWS(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		leaf := f.mustEnroll(t, "default", "w-status")
		serial := serialOf(leaf)
		if s := f.statusOf(t, serial, ""); s.Status != revocation.StatusGood || s.Serial != serial || !s.At.Equal(catest.Epoch) || s.RevokedAt != nil {
			t.Fatalf("status before revocation: %+v, want good at %v", s, catest.Epoch)
		}
		if s := f.statusOf(t, "7fffffffffffffff", ""); s.Status != revocation.StatusUnknown {
			t.Fatalf("status of a serial never issued: %+v, want unknown", s)
		}

		f.clock.Add(time.Minute)
		revokedAt := catest.Epoch.Add(time.Minute)
		f.revoke(t, map[string]any{"serial": serial, "reason": "keyCompromise"})
		at := func(t time.Time) string { return "?at=" + url.QueryEscape(t.Format(time.RFC3339)) }
		for _, tc := range []struct {
			name, serial, query string
			want                string
		}{
			{"ok/now-revoked", serial, "", revocation.StatusRevoked},
			{"ok/uppercase-serial", strings.ToUpper(serial), "", revocation.StatusRevoked},
			{"ok/at-revocation-revoked", serial, at(revokedAt), revocation.StatusRevoked},
			{"ok/before-revocation-good", serial, at(catest.Epoch), revocation.StatusGood},
			{"ok/before-revocation-other-zone-good", serial, at(catest.Epoch.In(time.FixedZone("", 2*3600))), revocation.StatusGood},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := f.statusOf(t, tc.serial, tc.query)
				if s.Status != tc.want || s.Serial != serial {
					t.Fatalf("status %+v, want %s for %s", s, tc.want, serial)
				}
				if tc.want == revocation.StatusRevoked && (s.Reason != "keyCompromise" || s.RevokedAt == nil || !s.RevokedAt.Equal(revokedAt)) {
					t.Fatalf("status %+v, want keyCompromise at %v", s, revokedAt)
				}
			})
		}

		t.Run("ok/invalidity-date-backdates", func(t *testing.T) {
			c := serialOf(f.mustEnroll(t, "default", "w-status-compromised"))
			f.revoke(t, map[string]any{"serial": c, "reason": "keyCompromise", "invalidity_date": catest.Epoch.Add(-time.Minute)})
			if s := f.statusOf(t, c, at(catest.Epoch)); s.Status != revocation.StatusRevoked || s.InvalidityDate == nil ||
				!s.InvalidityDate.Equal(catest.Epoch.Add(-time.Minute)) {
				t.Fatalf("status at %v of a key compromised before: %+v, want revoked", catest.Epoch, s)
			}
		})
	})
}

// TestRevocationBySelector: revoking by attestation_subject, worker_id
// and pool over HTTP returns exactly the matching serials, and a second
// call returns them as already_revoked with their first revocation
// standing; a selector that matches nothing is an empty answer.
func TestRevocationBySelector(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := start(t, st)
		a1 := serialOf(f.mustEnroll(t, "default", "w-sel-a"))
		a2 := serialOf(f.mustEnroll(t, "default", "w-sel-a"))
		b := serialOf(f.mustEnroll(t, "default", "w-sel-b"))
		c := serialOf(f.mustEnroll(t, "capped", "w-sel-c"))
		row, err := st.Certificate(t.Context(), a1)
		if err != nil {
			t.Fatal(err)
		}
		subject := row.AttestationSubject
		if !strings.HasPrefix(subject, "token:") {
			t.Fatalf("attestation subject %q of a token enrollment", subject)
		}

		f.clock.Add(time.Minute)
		for _, tc := range []struct {
			name             string
			selector, value  string
			reason           string
			revoked, already []string
		}{
			{"ok/attestation-subject", "attestation_subject", subject, "keyCompromise", []string{a1}, []string{}},
			{"ok/worker-id", "worker_id", "w-sel-a", "superseded", []string{a2}, []string{a1}},
			{"ok/pool-capped", "pool", "capped", "cessationOfOperation", []string{c}, []string{}},
			{"ok/pool-default", "pool", "default", "privilegeWithdrawn", []string{b}, []string{a1, a2}},
			{"ok/unknown-worker", "worker_id", "w-nobody", "superseded", []string{}, []string{}},
			{"ok/unknown-pool", "pool", "nopool", "superseded", []string{}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{tc.selector: tc.value, "reason": tc.reason}
				a := f.revoke(t, body)
				wantSerials(t, "revoked", a.Revoked, tc.revoked...)
				wantSerials(t, "already_revoked", a.AlreadyRevoked, tc.already...)
				again := f.revoke(t, body)
				wantSerials(t, "revoked the second time", again.Revoked)
				wantSerials(t, "already_revoked the second time", again.AlreadyRevoked, append(tc.revoked, tc.already...)...)
			})
		}
		// The first revocation of each certificate stands.
		for serial, reason := range map[string]revocation.Reason{
			a1: revocation.KeyCompromise, a2: revocation.Superseded, b: revocation.PrivilegeWithdrawn, c: revocation.CessationOfOperation,
		} {
			row, err := st.Certificate(t.Context(), serial)
			if err != nil {
				t.Fatal(err)
			}
			if row.RevokedAt == nil || !row.RevokedAt.Equal(catest.Epoch.Add(time.Minute)) || row.RevocationReason == nil || *row.RevocationReason != int(reason) {
				t.Fatalf("%s: revoked at %v reason %v, want %s at %v", serial, row.RevokedAt, row.RevocationReason, reason, catest.Epoch.Add(time.Minute))
			}
		}
	})
}
