package revocation_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// ocspRequest is a DER OCSP request for cert under issuer with the CertID
// hash h and no nonce, as golang.org/x/crypto/ocsp clients send it.
func ocspRequest(t *testing.T, cert, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	der, err := xocsp.CreateRequest(cert, issuer, &xocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// serialOnly is a certificate carrying only a serial number, to ask about
// serials this CA never issued.
func serialOnly(n *big.Int) *x509.Certificate { return &x509.Certificate{SerialNumber: n} }

// oidOCSPNonce is id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
var oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// withNonce adds requestExtensions holding an id-pkix-ocsp-nonce whose
// extnValue is the DER OCTET STRING of nonce (RFC 9654 §2.1) to a DER
// OCSPRequest without extensions.
func withNonce(t *testing.T, req, nonce []byte) []byte {
	t.Helper()
	in := cryptobyte.String(req)
	var outer, tbs cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) || !outer.Empty() {
		t.Fatal("withNonce: not an unsigned OCSPRequest")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(tbs)
			b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidOCSPNonce)
						b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
							b.AddASN1OctetString(nonce)
						})
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// responseNonce walks a ResponseData (RFC 6960 §4.2.1) to its
// responseExtensions and returns the nonce's octets; has reports whether
// there are responseExtensions at all.
func responseNonce(t *testing.T, tbsResponseData []byte) (nonce []byte, has bool) {
	t.Helper()
	in := cryptobyte.String(tbsResponseData)
	var rd, responderID, exts cryptobyte.String
	var tag cbasn1.Tag
	if !in.ReadASN1(&rd, cbasn1.SEQUENCE) ||
		!rd.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!rd.ReadAnyASN1(&responderID, &tag) ||
		!rd.SkipASN1(cbasn1.GeneralizedTime) || // producedAt
		!rd.SkipASN1(cbasn1.SEQUENCE) || // responses
		!rd.ReadOptionalASN1(&exts, &has, cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!rd.Empty() {
		t.Fatal("responseNonce: bad ResponseData")
	}
	if !has {
		return nil, false
	}
	var list cryptobyte.String
	if !exts.ReadASN1(&list, cbasn1.SEQUENCE) {
		t.Fatal("responseNonce: bad responseExtensions")
	}
	for !list.Empty() {
		var ext, value, n cryptobyte.String
		var id asn1.ObjectIdentifier
		critical := false
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&id) ||
			!ext.ReadOptionalASN1Boolean(&critical, cbasn1.BOOLEAN, false) || !ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			t.Fatal("responseNonce: bad Extension")
		}
		if id.Equal(oidOCSPNonce) {
			if critical || !value.ReadASN1(&n, cbasn1.OCTET_STRING) || !value.Empty() {
				t.Fatal("responseNonce: nonce is critical or not an OCTET STRING")
			}
			return []byte(n), true
		}
	}
	return nil, true
}

// ask sends a DER request to the service.
func (h *harness) ask(der []byte) *revocation.OCSPAnswer {
	return h.svc.OCSP(context.Background(), der)
}

// signed parses a successful answer about cert and checks what every
// signed answer must be: signed by the service's current delegated
// responder certificate (itself issued by the intermediate for
// OCSPSigning, with ocsp-nocheck), RFC 5019 times, and served metadata
// equal to the signed fields.
func (h *harness) signed(t *testing.T, a *revocation.OCSPAnswer, cert *x509.Certificate, hash crypto.Hash) *xocsp.Response {
	t.Helper()
	resp, err := xocsp.ParseResponseForCert(a.DER, cert, h.h.Intermediate)
	if err != nil {
		t.Fatalf("ParseResponseForCert: %v", err)
	}
	rc := h.svc.ResponderCertificate()
	if resp.Certificate == nil || !resp.Certificate.Equal(rc) {
		t.Fatal("answer not signed by the current responder certificate")
	}
	if !slices.Equal(rc.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}) {
		t.Errorf("responder certificate EKU %v, want OCSPSigning only", rc.ExtKeyUsage)
	}
	if sum := sha1.Sum(spkBits(t, rc)); !bytes.Equal(resp.ResponderKeyHash, sum[:]) {
		t.Errorf("ResponderID byKey %x, want %x", resp.ResponderKeyHash, sum)
	}
	if resp.IssuerHash != hash || resp.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("CertID hash %v serial %x, want %v %x", resp.IssuerHash, resp.SerialNumber, hash, cert.SerialNumber)
	}
	now := h.clock.Now()
	switch {
	case !resp.ProducedAt.Equal(now.Truncate(time.Second)):
		t.Errorf("producedAt %v, want now %v", resp.ProducedAt, now)
	case resp.ThisUpdate.After(resp.ProducedAt):
		t.Errorf("thisUpdate %v after producedAt %v", resp.ThisUpdate, resp.ProducedAt)
	case resp.NextUpdate.IsZero() || !resp.NextUpdate.Equal(resp.ThisUpdate.Add(testOCSPValidity)):
		t.Errorf("nextUpdate %v, want thisUpdate %v + %v", resp.NextUpdate, resp.ThisUpdate, testOCSPValidity)
	case !a.ThisUpdate.Equal(resp.ThisUpdate) || !a.NextUpdate.Equal(resp.NextUpdate) || !a.ProducedAt.Equal(resp.ProducedAt):
		t.Errorf("served times %v %v %v, signed %v %v %v", a.ThisUpdate, a.NextUpdate, a.ProducedAt, resp.ThisUpdate, resp.NextUpdate, resp.ProducedAt)
	}
	if sum := sha256.Sum256(a.DER); a.ETag != `"`+hex.EncodeToString(sum[:16])+`"` {
		t.Errorf("ETag %s is not of the DER", a.ETag)
	}
	return resp
}

// spkBits is the value of a certificate's subjectPublicKey BIT STRING.
func spkBits(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	in := cryptobyte.String(c.RawSubjectPublicKeyInfo)
	var spki cryptobyte.String
	var bits asn1.BitString
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !spki.SkipASN1(cbasn1.SEQUENCE) || !spki.ReadASN1BitString(&bits) {
		t.Fatal("bad subjectPublicKeyInfo")
	}
	return bits.Bytes
}

// refused checks an unsigned error answer.
func refused(t *testing.T, a *revocation.OCSPAnswer, want xocsp.ResponseStatus) {
	t.Helper()
	_, err := xocsp.ParseResponse(a.DER, nil)
	var re xocsp.ResponseError
	if !errors.As(err, &re) || re.Status != want {
		t.Fatalf("answer %x: %v, want %v", a.DER, err, want)
	}
	if a.Cacheable || a.ETag != "" || !a.ThisUpdate.IsZero() || !a.NextUpdate.IsZero() || !a.ProducedAt.IsZero() {
		t.Errorf("error answer %v is cacheable or carries times: %+v", want, a)
	}
}

// TestOCSPCache follows one certificate's answers: signed on the first
// request, served again from memory, re-signed past half their validity,
// and revoked on the very next request after Revoke.
func TestOCSPCache(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-cache")
		peer := h.enroll(t, "build", "w-peer")
		req256 := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		req1 := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA1)

		first := h.ask(req256)
		resp := h.signed(t, first, w.cert, crypto.SHA256)
		if resp.Status != xocsp.Good || !first.Cacheable {
			t.Fatalf("first answer: status %v cacheable %v, want good and cacheable", resp.Status, first.Cacheable)
		}
		if want := h.clock.Now().Truncate(time.Minute); !resp.ThisUpdate.Equal(want) {
			t.Errorf("thisUpdate %v, want on the minute %v", resp.ThisUpdate, want)
		}
		if _, has := responseNonce(t, resp.TBSResponseData); has {
			t.Error("answer without a nonce request carries responseExtensions")
		}

		sha1Answer := h.ask(req1)
		if r := h.signed(t, sha1Answer, w.cert, crypto.SHA1); r.Status != xocsp.Good || sha1Answer == first || sha1Answer.ETag == first.ETag {
			t.Fatalf("SHA-1 request: status %v, same answer as SHA-256: %v", r.Status, sha1Answer == first)
		}

		half := resp.ThisUpdate.Add(testOCSPValidity / 2)
		for _, at := range []time.Time{h.clock.Now().Add(10 * time.Second), half.Add(-time.Second)} {
			h.clock.Set(at)
			again := h.ask(slices.Clone(req256))
			if again != first || !bytes.Equal(again.DER, first.DER) || again.ETag != first.ETag {
				t.Fatalf("at %v: a new answer, want the cached one (ETag %s, was %s)", at, again.ETag, first.ETag)
			}
			if h.ask(req1) != sha1Answer {
				t.Fatalf("at %v: SHA-1 answer not served from the cache", at)
			}
		}

		h.clock.Set(half)
		fresh := h.ask(req256)
		if fresh == first || fresh.ETag == first.ETag {
			t.Fatal("at half the validity: the old answer, want a re-signed one")
		}
		r := h.signed(t, fresh, w.cert, crypto.SHA256)
		if r.Status != xocsp.Good || !r.ThisUpdate.Equal(half.Truncate(time.Minute)) || !fresh.Cacheable {
			t.Fatalf("re-signed answer: status %v thisUpdate %v", r.Status, r.ThisUpdate)
		}
		if h.ask(req256) != fresh {
			t.Fatal("re-signed answer not cached")
		}
		peerAnswer := h.ask(ocspRequest(t, peer.cert, h.h.Intermediate, crypto.SHA256))

		h.clock.Add(17 * time.Second)
		revokedAt := h.clock.Now()
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			req  []byte
			hash crypto.Hash
		}{{"sha256", req256, crypto.SHA256}, {"sha1", req1, crypto.SHA1}} {
			a := h.ask(tc.req)
			r := h.signed(t, a, w.cert, tc.hash)
			if r.Status != xocsp.Revoked || !r.RevokedAt.Equal(revokedAt) || r.RevocationReason != xocsp.KeyCompromise {
				t.Fatalf("%s right after Revoke: status %v at %v reason %d; want revoked at %v keyCompromise",
					tc.name, r.Status, r.RevokedAt, r.RevocationReason, revokedAt)
			}
			// thisUpdate is on the minute unless that would be before the
			// revocation it reports.
			if !r.ThisUpdate.Equal(revokedAt) || !a.Cacheable {
				t.Errorf("%s: revoked answer thisUpdate %v, want the revocation time %v", tc.name, r.ThisUpdate, revokedAt)
			}
			if h.ask(tc.req) != a {
				t.Errorf("%s: revoked answer not cached", tc.name)
			}
		}
		if h.ask(ocspRequest(t, peer.cert, h.h.Intermediate, crypto.SHA256)) != peerAnswer {
			t.Error("revoking one certificate dropped another's cached answer")
		}
	})
}

// TestOCSPRequests answers every CertID hash, a serial never issued, and
// requests that must be refused.
func TestOCSPRequests(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-requests")
		foreign := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour)) // same subject name, another key
		if !bytes.Equal(foreign.Intermediate.RawSubject, h.h.Intermediate.RawSubject) {
			t.Fatal("the foreign intermediate should share the subject name")
		}
		never, err := ca.NewSerial(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		good := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		for _, tc := range []struct {
			name   string
			cert   *x509.Certificate
			hash   crypto.Hash
			status int
		}{
			{"ok/sha1", w.cert, crypto.SHA1, xocsp.Good},
			{"ok/sha256", w.cert, crypto.SHA256, xocsp.Good},
			{"ok/sha384", w.cert, crypto.SHA384, xocsp.Good},
			{"ok/sha512", w.cert, crypto.SHA512, xocsp.Good},
			{"ok/never-issued-sha1-unknown", serialOnly(never), crypto.SHA1, xocsp.Unknown},
			{"ok/never-issued-sha256-unknown", serialOnly(never), crypto.SHA256, xocsp.Unknown},
			{"ok/serial-one-unknown", serialOnly(big.NewInt(1)), crypto.SHA256, xocsp.Unknown},
			{"ok/serial-zero-unknown", serialOnly(big.NewInt(0)), crypto.SHA256, xocsp.Unknown},
			{"ok/responder-certificate-known", h.svc.ResponderCertificate(), crypto.SHA256, xocsp.Good},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for range 2 { // the second is served from the cache, or signed again
					a := h.ask(ocspRequest(t, tc.cert, h.h.Intermediate, tc.hash))
					if r := h.signed(t, a, tc.cert, tc.hash); r.Status != tc.status {
						t.Fatalf("status %v, want %v", r.Status, tc.status)
					}
				}
			})
		}

		var twoRequests []byte
		{
			// The request list of good, twice.
			in := cryptobyte.String(good)
			var outer, tbs, list cryptobyte.String
			if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
				t.Fatal("bad request")
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(list); b.AddBytes(list) })
				})
			})
			twoRequests = b.BytesOrPanic()
		}
		for _, tc := range []struct {
			name string
			der  []byte
			want xocsp.ResponseStatus
		}{
			{"fail/garbage", []byte("GET /ocsp HTTP/1.1"), xocsp.Malformed},
			{"fail/empty", nil, xocsp.Malformed},
			{"fail/truncated", good[:len(good)-1], xocsp.Malformed},
			{"fail/trailing-data", append(slices.Clone(good), 0), xocsp.Malformed},
			{"fail/two-requests", twoRequests, xocsp.Malformed},
			{"fail/empty-nonce", withNonce(t, good, []byte{}), xocsp.Malformed},
			{"fail/nonce-over-128-octets", withNonce(t, good, make([]byte, 129)), xocsp.Malformed},
			{"fail/a-certificate-not-a-request", w.cert.Raw, xocsp.Malformed},
			{"fail/foreign-issuer", ocspRequest(t, serialOnly(w.cert.SerialNumber), foreign.Intermediate, crypto.SHA256), xocsp.Unauthorized},
			{"fail/foreign-issuer-sha1", ocspRequest(t, serialOnly(w.cert.SerialNumber), foreign.Intermediate, crypto.SHA1), xocsp.Unauthorized},
			{"fail/the-root-as-issuer", ocspRequest(t, w.cert, h.h.Root, crypto.SHA256), xocsp.Unauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				refused(t, h.ask(tc.der), tc.want)
			})
		}
	})
}

// TestOCSPNonce shows that a request with a nonce gets a freshly signed,
// non-cacheable answer echoing it, and leaves the cache alone.
func TestOCSPNonce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-nonce")
		uncached := h.enroll(t, "build", "w-nonce-uncached")
		plain := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		cached := h.ask(plain)

		nonce := func(n int) []byte {
			b := make([]byte, n)
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		check := func(name string, cert *x509.Certificate, hash crypto.Hash, n []byte, status int) {
			t.Helper()
			a := h.ask(withNonce(t, ocspRequest(t, cert, h.h.Intermediate, hash), n))
			r := h.signed(t, a, cert, hash)
			got, _ := responseNonce(t, r.TBSResponseData)
			if r.Status != status || a.Cacheable || !bytes.Equal(got, n) {
				t.Errorf("%s: status %v cacheable %v nonce %x; want %v, not cacheable, nonce %x", name, r.Status, a.Cacheable, got, status, n)
			}
			if a == cached || bytes.Equal(a.DER, cached.DER) {
				t.Errorf("%s: the cached answer, want a fresh one", name)
			}
		}
		check("16-octet nonce", w.cert, crypto.SHA256, nonce(16), xocsp.Good)
		check("another nonce", w.cert, crypto.SHA256, nonce(16), xocsp.Good)
		check("1-octet nonce", w.cert, crypto.SHA1, nonce(1), xocsp.Good)
		check("128-octet nonce", w.cert, crypto.SHA256, nonce(128), xocsp.Good)
		check("uncached serial", uncached.cert, crypto.SHA256, nonce(32), xocsp.Good)
		never, _ := ca.NewSerial(rand.Reader)
		check("never issued", serialOnly(never), crypto.SHA256, nonce(16), xocsp.Unknown)
		if h.ask(plain) != cached {
			t.Fatal("a nonce answer replaced the cached one")
		}
		// The nonce answer for the uncached serial was not cached either.
		a := h.ask(ocspRequest(t, uncached.cert, h.h.Intermediate, crypto.SHA256))
		if _, has := responseNonce(t, h.signed(t, a, uncached.cert, crypto.SHA256).TBSResponseData); has || !a.Cacheable {
			t.Fatal("a request without a nonce got a nonce answer from the cache")
		}
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.Superseded}); err != nil {
			t.Fatal(err)
		}
		check("revoked", w.cert, crypto.SHA256, nonce(16), xocsp.Revoked)
	})
}

// TestOCSPOpenSSL has OpenSSL make a request (with its default nonce)
// and verify the answer: signature, delegation to the responder, the
// nonce, and the status.
func TestOCSPOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required (scripts/test.sh installs it): %v", err)
	}
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		h := newHarness(t, st)
		good, revoked := h.enroll(t, "build", "w-openssl-good"), h.enroll(t, "build", "w-openssl-revoked")
		if _, err := h.svc.Revoke(context.Background(), revocation.Request{Serial: revoked.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		write := func(name string, data []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		certPEM := func(c *x509.Certificate) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		root, inter := write("root.pem", certPEM(h.h.Root)), write("int.pem", certPEM(h.h.Intermediate))
		at := strconv.FormatInt(h.clock.Now().Unix(), 10)
		for _, tc := range []struct {
			name string
			w    issued
			hash string
			want string
		}{
			{"ok/good-sha1", good, "-sha1", "Cert Status: good"},
			{"ok/good-sha256", good, "-sha256", "Cert Status: good"},
			{"ok/revoked-sha256", revoked, "-sha256", "Cert Status: revoked"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				leaf := write(tc.w.worker+".pem", certPEM(tc.w.cert))
				reqPath, respPath := filepath.Join(dir, tc.w.worker+tc.hash+".req"), filepath.Join(dir, tc.w.worker+tc.hash+".resp")
				if out, err := exec.Command(openssl, "ocsp", tc.hash, "-issuer", inter, "-cert", leaf, "-reqout", reqPath).CombinedOutput(); err != nil {
					t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
				}
				req, err := os.ReadFile(reqPath)
				if err != nil {
					t.Fatal(err)
				}
				a := h.ask(req)
				if a.Cacheable {
					t.Error("answer to OpenSSL's nonce request is cacheable")
				}
				write(filepath.Base(respPath), a.DER)
				// No -cert here: with it OpenSSL would build a new request,
				// with a new nonce, instead of reading reqPath.
				out, err := exec.Command(openssl, "ocsp", "-respin", respPath, "-reqin", reqPath, "-issuer", inter,
					"-CAfile", root, "-attime", at, "-resp_text").CombinedOutput()
				text := string(out)
				if err != nil {
					t.Fatalf("openssl ocsp -respin: %v\n%s", err, text)
				}
				for _, want := range []string{"Response verify OK", tc.want, "OCSP Nonce:"} {
					if !strings.Contains(text, want) {
						t.Errorf("openssl output lacks %q:\n%s", want, text)
					}
				}
				for _, bad := range []string{"Nonce Verify error", "WARNING: no nonce in response"} {
					if strings.Contains(text, bad) {
						t.Errorf("openssl output has %q:\n%s", bad, text)
					}
				}
			})
		}
	})
}

// TestOCSPFailSoft closes the ledger: cached answers keep being served
// until their nextUpdate, everything else is tryLater, and revocation and
// status report the ledger unavailable.
func TestOCSPFailSoft(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		w, other := h.enroll(t, "build", "w-soft"), h.enroll(t, "build", "w-soft-other")
		req := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		cached := h.ask(req)
		if r := h.signed(t, cached, w.cert, crypto.SHA256); r.Status != xocsp.Good {
			t.Fatalf("status %v", r.Status)
		}
		crl := h.crl(t, h.svc, 0)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		if h.ask(req) != cached {
			t.Fatal("ledger down: cached answer not served")
		}
		h.clock.Set(cached.ThisUpdate.Add(testOCSPValidity / 2)) // due for re-signing, which needs the ledger
		if h.ask(req) != cached {
			t.Fatal("ledger down, answer past half its validity: not served, though still valid")
		}
		refused(t, h.ask(ocspRequest(t, other.cert, h.h.Intermediate, crypto.SHA256)), xocsp.TryLater)
		refused(t, h.ask(ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA1)), xocsp.TryLater)
		refused(t, h.ask(withNonce(t, req, []byte("0123456789abcdef"))), xocsp.TryLater)
		h.clock.Set(cached.NextUpdate)
		refused(t, h.ask(req), xocsp.TryLater)
		if len(h.logs.errors()) == 0 {
			t.Error("the ledger failure was not logged")
		}

		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial}); !errors.Is(err, revocation.ErrUnavailable) {
			t.Errorf("Revoke: %v, want ErrUnavailable", err)
		}
		if _, _, err := h.svc.Status(ctx, w.serial, nil); !errors.Is(err, revocation.ErrUnavailable) {
			t.Errorf("Status: %v, want ErrUnavailable", err)
		}
		if err := h.svc.Rebuild(ctx, 0); !errors.Is(err, revocation.ErrUnavailable) {
			t.Errorf("Rebuild: %v, want ErrUnavailable", err)
		}
		if c, err := h.svc.CRL(0); err != nil || !bytes.Equal(c.DER, crl.DER) {
			t.Errorf("CRL(0) after a failed rebuild: %v; want the last one served", err)
		}
	})
}

// pausingLedger is the real store with one Certificate read held after it
// read the ledger, to replay a request racing a revocation step by step.
type pausingLedger struct {
	*store.Store
	pause         atomic.Bool
	read, release chan struct{}
}

func (l *pausingLedger) Certificate(ctx context.Context, serial string) (*store.Certificate, error) {
	c, err := l.Store.Certificate(ctx, serial)
	if l.pause.CompareAndSwap(true, false) {
		l.read <- struct{}{}
		<-l.release
	}
	return c, err
}

// TestOCSPRevokeRacingRequest replays the race the epoch guard closes: a
// request reads "good" from the ledger, Revoke then completes, and only
// then is the request's answer signed. That answer may say good (the
// request came first), but must not be cached: the next one says revoked.
func TestOCSPRevokeRacingRequest(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		l := &pausingLedger{Store: st, read: make(chan struct{}), release: make(chan struct{})}
		h := newHarness(t, st, func(c *revocation.Config) { c.Ledger = l })
		w := h.enroll(t, "build", "w-racing")
		req := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)

		l.pause.Store(true)
		early := make(chan *revocation.OCSPAnswer)
		go func() { early <- h.ask(req) }()
		<-l.read
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		close(l.release)
		if r := h.signed(t, <-early, w.cert, crypto.SHA256); r.Status != xocsp.Good {
			t.Fatalf("the request that read the ledger first: %v, want good", r.Status)
		}
		if r := h.signed(t, h.ask(req), w.cert, crypto.SHA256); r.Status != xocsp.Revoked {
			t.Fatalf("first request after Revoke returned: %v, want revoked (a stale good was cached)", r.Status)
		}
	})
}

// TestOCSPRevokeRace runs OCSP requests for one serial, with every hash,
// concurrently with its revocation, over many certificates: every request
// made after Revoke returned must say revoked. Run it with -race.
func TestOCSPRevokeRace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		hashes := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}
		const rounds, askers, after = 8, 4, 25
		for round := range rounds {
			w := h.enroll(t, "build", fmt.Sprintf("w-race-%d", round))
			reqs := make([][]byte, len(hashes))
			for i, hh := range hashes {
				reqs[i] = ocspRequest(t, w.cert, h.h.Intermediate, hh)
			}
			if round%2 == 1 { // half the rounds start with warm caches
				for _, r := range reqs {
					h.ask(r)
				}
			}
			var (
				revoked atomic.Bool
				start   = make(chan struct{})
				wg      sync.WaitGroup
				mu      sync.Mutex
				fails   []string
			)
			for g := range askers {
				wg.Go(func() {
					<-start
					for n, seen := g, 0; seen < after; n++ {
						wasRevoked := revoked.Load()
						a := h.ask(reqs[n%len(reqs)])
						resp, err := xocsp.ParseResponseForCert(a.DER, w.cert, h.h.Intermediate)
						switch {
						case err != nil:
							mu.Lock()
							fails = append(fails, err.Error())
							mu.Unlock()
							return
						case wasRevoked && resp.Status != xocsp.Revoked:
							mu.Lock()
							fails = append(fails, fmt.Sprintf("request %d (%v) after Revoke returned: status %d", n, hashes[n%len(hashes)], resp.Status))
							mu.Unlock()
						}
						if wasRevoked {
							seen++
						}
					}
				})
			}
			close(start)
			if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
				t.Fatal(err)
			}
			revoked.Store(true)
			wg.Wait()
			if len(fails) != 0 {
				t.Fatalf("round %d: %d bad answers, first: %s", round, len(fails), fails[0])
			}
		}
	})
}

// TestResponderCertificate shows that Start issues a delegated responder
// certificate recorded in the ledger, that answers are signed by it, and
// that a new Start renews it and drops the answers the old one signed.
func TestResponderCertificate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		const ttl = 3 * testOCSPValidity
		h := newHarness(t, st, func(c *revocation.Config) { c.ResponderTTL = ttl })
		w := h.enroll(t, "build", "w-responder")
		rc := h.svc.ResponderCertificate()
		if rc == nil {
			t.Fatal("no responder certificate after Start")
		}
		if err := rc.CheckSignatureFrom(h.h.Intermediate); err != nil {
			t.Fatalf("responder certificate not issued by the intermediate: %v", err)
		}
		noCheck := false
		for _, e := range rc.Extensions {
			noCheck = noCheck || e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5})
		}
		if !noCheck || rc.KeyUsage != x509.KeyUsageDigitalSignature || len(rc.CRLDistributionPoints)+len(rc.OCSPServer) != 0 || rc.IsCA {
			t.Errorf("responder certificate: nocheck %v, key usage %v, CDP %v, OCSP %v, CA %v", noCheck, rc.KeyUsage, rc.CRLDistributionPoints, rc.OCSPServer, rc.IsCA)
		}
		if now := h.clock.Now(); !rc.NotAfter.Equal(now.Add(ttl)) || rc.NotBefore.After(now) {
			t.Errorf("responder certificate valid %v to %v, want until now + %v", rc.NotBefore, rc.NotAfter, ttl)
		}
		row := h.row(t, ca.SerialHex(rc.SerialNumber))
		if enroll.MethodResponder != "ocsp-responder" || row.Method != enroll.MethodResponder || !bytes.Equal(row.DER, rc.Raw) || row.Pool != "" {
			t.Errorf("ledger row of the responder certificate: method %q pool %q", row.Method, row.Pool)
		}

		req := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		old := h.ask(req)
		if r := h.signed(t, old, w.cert, crypto.SHA256); r.Status != xocsp.Good || !r.Certificate.Equal(rc) {
			t.Fatalf("answer status %v, not signed by the responder certificate", r.Status)
		}
		// Answers stay within the responder certificate's validity.
		h.clock.Add(ttl / 2)
		if r := h.signed(t, h.ask(req), w.cert, crypto.SHA256); r.NextUpdate.After(rc.NotAfter) {
			t.Errorf("answer's nextUpdate %v after the responder certificate's notAfter %v", r.NextUpdate, rc.NotAfter)
		}

		// Start again: a renewal, with a new key and certificate.
		if err := h.svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		renewed := h.svc.ResponderCertificate()
		if renewed.Equal(rc) || bytes.Equal(renewed.RawSubjectPublicKeyInfo, rc.RawSubjectPublicKeyInfo) {
			t.Fatal("Start did not renew the responder certificate and key")
		}
		if row := h.row(t, ca.SerialHex(renewed.SerialNumber)); row.Method != enroll.MethodResponder {
			t.Errorf("renewed responder certificate recorded with method %q", row.Method)
		}
		a := h.ask(req)
		if a == old {
			t.Fatal("the old responder's answer is still served")
		}
		if r := h.signed(t, a, w.cert, crypto.SHA256); !r.Certificate.Equal(renewed) {
			t.Fatal("answer not signed by the renewed responder certificate")
		}

		// Past the responder certificate's notAfter with no renewal (Run
		// is not running), nothing is signed with the expired key.
		h.clock.Set(renewed.NotAfter.Add(time.Second))
		if _, err := xocsp.ParseResponse(h.ask(ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA1)).DER, nil); err == nil {
			t.Error("a signed answer from an expired responder certificate")
		}
	})
}
