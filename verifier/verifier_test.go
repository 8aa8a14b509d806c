package verifier_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/verifier"
)

// signed is an artifact a worker of pool "build" signed 10 minutes after
// it enrolled, and registered for 30 days.
type signed struct {
	w                    worker
	digest, jws, receipt string
	at                   time.Time
}

const testKeep = 30 * 24 * time.Hour

func (h *harness) signed(t *testing.T) signed {
	t.Helper()
	w := h.enroll(t, "build", "w-1")
	h.clock.Add(10 * time.Minute)
	d, jws := sign(t, w, "build output")
	return signed{w: w, digest: d, jws: jws, receipt: h.receipt(t, registration{w, d, jws, testKeep}), at: h.clock.Now().Truncate(time.Second)}
}

// req is s as an ArtifactRequest, with its receipt or without.
func (s signed) req(withReceipt bool) verifier.ArtifactRequest {
	r := verifier.ArtifactRequest{Digest: s.digest, Signature: s.jws}
	if withReceipt {
		r.Receipt = s.receipt
	}
	return r
}

// expect is the outcome a case wants: a Result with code (and, when set,
// at source and revocation), or an error wrapping err.
type expect struct {
	code, atSource, revocation string
	err                        error
}

func (want expect) check(t *testing.T, res *verifier.Result, err error) {
	t.Helper()
	if want.err != nil {
		if !errors.Is(err, want.err) || res != nil {
			t.Fatalf("got %+v, %v; want an error wrapping %v", res, err, want.err)
		}
		return
	}
	if err != nil {
		t.Fatalf("error %v; want code %s", err, want.code)
	}
	if res.Code != want.code || res.Accepted != (want.code == verifier.CodeOK) {
		t.Fatalf("code %s accepted %v (%s); want %s", res.Code, res.Accepted, res.Message, want.code)
	}
	if want.atSource != "" && res.AtSource != want.atSource {
		t.Errorf("at_source %s, want %s", res.AtSource, want.atSource)
	}
	if want.revocation != "" && res.Revocation != want.revocation {
		t.Errorf("revocation %s, want %s (%s)", res.Revocation, want.revocation, res.Message)
	}
	if res.Message == "" {
		t.Errorf("no message")
	}
}

// verdictCase is a case of TestArtifact or TestCertificate: run on a
// fresh harness, it must end as want says.
type verdictCase struct {
	name string
	run  func(t *testing.T, h *harness) (*verifier.Result, error)
	want expect
}

// runVerdictCases runs each case on a fresh harness of each ledger driver.
func runVerdictCases(t *testing.T, tests []verdictCase) {
	t.Helper()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					h := newHarness(t, driver)
					res, err := tc.run(t, h)
					tc.want.check(t, res, err)
				})
			}
		})
	}
}

func newVerifier(t *testing.T, cfg verifier.Config) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(cfg)
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	return v
}

// tamper replaces the character at i of the part-th part of a compact
// JWS (0 header, 1 payload, 2 signature) by another base64url character.
func tamper(jws string, part, i int) string {
	parts := strings.Split(jws, ".")
	b := []byte(parts[part])
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	parts[part] = string(b)
	return strings.Join(parts, ".")
}

// TestArtifact checks artifact signatures with the real CA's status
// service on each ledger: the signing time from receipts, the
// revocation-at-signing-time rules and every way to be rejected.
func TestArtifact(t *testing.T) {
	t.Parallel()
	ok := func(src string) expect {
		return expect{code: verifier.CodeOK, atSource: src, revocation: verifier.RevocationGood}
	}
	tests := []verdictCase{
		{"ok/now-without-receipt", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			res, err := newVerifier(t, h.config()).Artifact(t.Context(), s.req(false))
			if err == nil && (res.Serial != s.w.serial || res.SHA256 != s.digest || res.Name != "app.tar.gz" || res.Pool != "build" ||
				res.WorkerID != "w-1" || res.SPIFFEID != "spiffe://"+testTrustDomain+"/worker/build/w-1" || !res.At.Equal(s.at)) {
				t.Errorf("result %+v", res)
			}
			return res, err
		}, ok(verifier.AtNow)},
		{"ok/receipt-long-after-not-after", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * 24 * time.Hour)
			if !h.clock.Now().After(s.w.leaf().NotAfter) {
				t.Fatal("the certificate has not expired")
			}
			res, err := newVerifier(t, h.config()).Artifact(t.Context(), s.req(true))
			if err == nil && (!res.At.Equal(s.at) || res.RegisteredAt == nil || !res.RegisteredAt.Equal(s.at) ||
				res.RegistrationExpiresAt == nil || !res.RegistrationExpiresAt.Equal(s.at.Add(testKeep))) {
				t.Errorf("at %s registered %v expires %v; want %s", res.At, res.RegisteredAt, res.RegistrationExpiresAt, s.at)
			}
			return res, err
		}, ok(verifier.AtReceipt)},
		{"fail/expired-without-receipt", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(2 * time.Hour)
			return newVerifier(t, h.config()).Artifact(t.Context(), s.req(false))
		}, expect{code: verifier.CodeExpired, revocation: verifier.RevocationNotChecked}},
		{"fail/tampered-file", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			req := s.req(true)
			req.Digest = digestOf("build output, tampered")
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeDigestMismatch}},
		{"fail/tampered-signature", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			req := s.req(false)
			req.Signature = tamper(s.jws, 2, 10)
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeBadSignature}},
		{"fail/tampered-payload", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			parts := strings.Split(s.jws, ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sha256":"` + digestOf("evil") + `"}`))
			return newVerifier(t, h.config()).Artifact(t.Context(), verifier.ArtifactRequest{Digest: digestOf("evil"), Signature: strings.Join(parts, ".")})
		}, expect{code: verifier.CodeBadSignature}},
		{"fail/signature-not-a-jws", func(t *testing.T, h *harness) (*verifier.Result, error) {
			return newVerifier(t, h.config()).Artifact(t.Context(), verifier.ArtifactRequest{Digest: digestOf("x"), Signature: "not a signature"})
		}, expect{code: verifier.CodeMalformed}},
		{"fail/receipt-signed-by-another-key", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			other, err := artifact.NewReceiptSigner(catest.Key(t, ca.KeyP256))
			if err != nil {
				t.Fatal(err)
			}
			h.receipts = other
			req := s.req(false)
			req.Receipt = h.receipt(t, registration{s.w, s.digest, s.jws, testKeep})
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeReceiptUntrusted}},
		{"fail/status-answer-as-receipt", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			jws, _, err := h.svc.Status(t.Context(), s.w.serial, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := s.req(false)
			req.Receipt = jws
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeMalformed}},
		{"fail/receipt-for-another-signature", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			_, again := sign(t, s.w, "build output")
			req := s.req(true)
			req.Signature = again
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeReceiptMismatch}},
		{"fail/receipt-for-another-certificate", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			other := h.enroll(t, "build", "w-2")
			req := s.req(false)
			req.Receipt = h.receipt(t, registration{worker{chain: s.w.chain, serial: other.serial}, s.digest, s.jws, testKeep})
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeReceiptMismatch}},
		{"fail/receipt-for-another-artifact", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			req := s.req(false)
			req.Receipt = h.receipt(t, registration{s.w, digestOf("other"), s.jws, testKeep})
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeReceiptMismatch}},
		{"fail/registration-expired", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			req := s.req(false)
			req.Receipt = h.receipt(t, registration{s.w, s.digest, s.jws, 24 * time.Hour})
			h.clock.Add(25 * time.Hour)
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{code: verifier.CodeRegistrationExpired}},
		{"fail/key-compromise-invalidity-date-before-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			invalidity := s.at.Add(-5 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.KeyCompromise, InvalidityDate: &invalidity})
			h.clock.Add(3 * 24 * time.Hour)
			res, err := newVerifier(t, h.config()).Artifact(t.Context(), s.req(true))
			if err == nil && (res.Reason != "keyCompromise" || res.InvalidityDate == nil || !res.InvalidityDate.Equal(invalidity) || res.RevokedAt == nil) {
				t.Errorf("revocation details %+v", res)
			}
			return res, err
		}, expect{code: verifier.CodeKeyCompromised, atSource: verifier.AtReceipt, revocation: verifier.RevocationRevoked}},
		{"ok/key-compromise-invalidity-date-after-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.KeyCompromise, InvalidityDate: at(s.at.Add(5 * time.Minute))})
			h.clock.Add(3 * 24 * time.Hour)
			res, err := newVerifier(t, h.config()).Artifact(t.Context(), s.req(true))
			if err == nil && !strings.Contains(res.Message, "revoked later") {
				t.Errorf("message %q does not mention the later revocation", res.Message)
			}
			return res, err
		}, ok(verifier.AtReceipt)},
		{"fail/key-compromise-without-invalidity-date", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.KeyCompromise})
			h.clock.Add(3 * 24 * time.Hour)
			return newVerifier(t, h.config()).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeKeyCompromised, revocation: verifier.RevocationRevoked}},
		{"ok/superseded-after-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.Superseded})
			return newVerifier(t, h.config()).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/superseded-now-without-receipt", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.Superseded})
			return newVerifier(t, h.config()).Artifact(t.Context(), s.req(false))
		}, expect{code: verifier.CodeRevoked, atSource: verifier.AtNow, revocation: verifier.RevocationRevoked}},
		{"fail/revoked-before-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "build", "w-1")
			h.clock.Add(5 * time.Minute)
			h.revoke(t, revocation.Request{Serial: w.serial, Reason: revocation.CessationOfOperation})
			h.clock.Add(5 * time.Minute)
			d, jws := sign(t, w, "late build")
			rc := h.receipt(t, registration{w, d, jws, testKeep})
			h.clock.Add(time.Hour)
			return newVerifier(t, h.config()).Artifact(t.Context(), verifier.ArtifactRequest{Digest: d, Signature: jws, Receipt: rc})
		}, expect{code: verifier.CodeRevoked, atSource: verifier.AtReceipt, revocation: verifier.RevocationRevoked}},
		{"fail/pool-not-allowed", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.AllowPools = []string{"deploy"}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodePoolNotAllowed}},
		{"ok/pool-allowed", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.AllowPools = []string{"deploy", "build"}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/wrong-trust-domain", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.TrustDomain = "workers.other.example"
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeTrustDomainMismatch}},
		{"ok/trust-domain", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.TrustDomain = testTrustDomain
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/foreign-root", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.Roots = catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour)).Roots()
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeUntrustedChain, revocation: verifier.RevocationNotChecked}},
		{"fail/not-in-the-ledger", func(t *testing.T, h *harness) (*verifier.Result, error) {
			key := catest.Key(t, ca.KeyP256)
			leaf := h.h.Worker(t, key, "build", "ghost", h.clock.Now(), time.Hour)
			w := worker{key: key, chain: []*x509.Certificate{leaf, h.h.Intermediate}, serial: ca.SerialHex(leaf.SerialNumber)}
			d, jws := sign(t, w, "ghost build")
			return newVerifier(t, h.config()).Artifact(t.Context(), verifier.ArtifactRequest{Digest: d, Signature: jws})
		}, expect{code: verifier.CodeStatusUnknown, revocation: verifier.RevocationUnknown}},
		{"ok/receipt-over-http", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.Superseded})
			h.clock.Add(3 * 24 * time.Hour)
			cfg := h.config()
			cfg.Status = httpStatus(t, h.statusServer(t, nil).URL, h.svc.StatusKeys())
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/key-compromise-over-http", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.KeyCompromise})
			h.clock.Add(3 * 24 * time.Hour)
			cfg := h.config()
			cfg.Status = httpStatus(t, h.statusServer(t, nil).URL, h.svc.StatusKeys())
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeKeyCompromised, revocation: verifier.RevocationRevoked}},
		{"fail/status-server-down", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.Status = httpStatus(t, closedURL(t), h.svc.StatusKeys())
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{err: verifier.ErrUnavailable}},
		{"ok/no-revocation-check", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.revoke(t, revocation.Request{Serial: s.w.serial, Reason: revocation.KeyCompromise})
			cfg := h.config()
			cfg.Status, cfg.NoRevocationCheck = nil, true
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeOK, revocation: verifier.RevocationNotChecked}},
		{"fail/bad-digest-argument", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			req := s.req(false)
			req.Digest = strings.ToUpper(req.Digest)
			return newVerifier(t, h.config()).Artifact(t.Context(), req)
		}, expect{err: verifier.ErrInvalidRequest}},
		{"fail/receipt-without-status-keys", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.StatusKeys.Keys = nil
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{err: verifier.ErrConfig}},

		// CRL mode.
		{"ok/crl-good", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			other := h.enroll(t, "build", "w-2")
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w, crlEntry{w: other, revokedAt: h.clock.Now(), reason: revocation.KeyCompromise})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(false))
		}, ok(verifier.AtNow)},
		{"fail/crl-revoked", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{
				h.buildCRL(t, crlSpec{dp: s.w.leaf().CRLDistributionPoints[0], thisUpdate: h.clock.Now().Add(-time.Hour)}), // older, without the entry
				h.crl(t, s.w, crlEntry{w: s.w, revokedAt: h.clock.Now(), reason: revocation.Superseded}),
			}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(false))
		}, expect{code: verifier.CodeRevoked, revocation: verifier.RevocationRevoked}},
		{"ok/crl-superseded-after-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w, crlEntry{w: s.w, revokedAt: h.clock.Now(), reason: revocation.Superseded})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/crl-key-compromise-invalidity-date-before-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w,
				crlEntry{w: s.w, revokedAt: h.clock.Now(), reason: revocation.KeyCompromise, invalidity: at(s.at.Add(-time.Second))})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeKeyCompromised, revocation: verifier.RevocationRevoked}},
		{"ok/crl-key-compromise-invalidity-date-after-signing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w,
				crlEntry{w: s.w, revokedAt: h.clock.Now(), reason: revocation.KeyCompromise, invalidity: at(s.at.Add(time.Second))})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, ok(verifier.AtReceipt)},
		{"fail/crl-key-compromise-without-invalidity-date", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(10 * time.Minute)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w, crlEntry{w: s.w, revokedAt: h.clock.Now(), reason: revocation.KeyCompromise})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{code: verifier.CodeKeyCompromised, revocation: verifier.RevocationRevoked}},
		{"fail/crl-of-another-shard", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.buildCRL(t, crlSpec{dp: otherShard(s.w), thisUpdate: h.clock.Now()})}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(false))
		}, expect{err: verifier.ErrUnavailable}},
		{"fail/crl-of-another-issuer", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			other := &harness{clock: h.clock, h: catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))}
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{other.crl(t, s.w)}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(false))
		}, expect{err: verifier.ErrUnavailable}},
		{"fail/crl-stale", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w)}
			h.clock.Add(25 * time.Hour)
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{err: verifier.ErrUnavailable}},
		{"fail/crl-issued-after-expiry-proves-nothing", func(t *testing.T, h *harness) (*verifier.Result, error) {
			s := h.signed(t)
			h.clock.Add(3 * time.Hour)
			cfg := h.config()
			cfg.Status, cfg.CRLs = nil, []*x509.RevocationList{h.crl(t, s.w)}
			return newVerifier(t, cfg).Artifact(t.Context(), s.req(true))
		}, expect{err: verifier.ErrUnavailable}},
	}
	runVerdictCases(t, tests)
}

// mint signs a worker-like certificate for a fresh key with the
// harness's intermediate and the given URI SANs: the real issuer never
// makes these, which is the point.
func (h *harness) mint(t *testing.T, uris ...string) *x509.Certificate {
	t.Helper()
	return h.mintKU(t, x509.KeyUsageDigitalSignature, uris...)
}

// mintKU is mint with the key usage ku.
func (h *harness) mintKU(t *testing.T, ku x509.KeyUsage, uris ...string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "odd"},
		NotBefore:    h.clock.Now().Add(-time.Minute), NotAfter: h.clock.Now().Add(time.Hour),
		KeyUsage:    ku,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, h.h.Intermediate, catest.Key(t, ca.KeyP256).Public(), h.h.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertificate checks certificate chains now and at given instants,
// and the identity rules, on each ledger.
func TestCertificate(t *testing.T) {
	t.Parallel()
	tests := []verdictCase{
		{"ok/now", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain})
		}, expect{code: verifier.CodeOK, atSource: verifier.AtNow, revocation: verifier.RevocationGood}},
		{"ok/leaf-alone-with-configured-intermediate", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			cfg := h.config()
			cfg.Intermediates = []*x509.Certificate{h.h.Intermediate}
			return newVerifier(t, cfg).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain[:1]})
		}, expect{code: verifier.CodeOK}},
		{"fail/leaf-alone", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain[:1]})
		}, expect{code: verifier.CodeUntrustedChain}},
		{"fail/no-chain", func(t *testing.T, h *harness) (*verifier.Result, error) {
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{})
		}, expect{code: verifier.CodeMalformed}},
		{"ok/given-instant-before-the-revocation", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			h.clock.Add(20 * time.Minute)
			h.revoke(t, revocation.Request{Serial: w.serial, Reason: revocation.AffiliationChanged})
			h.clock.Add(time.Minute)
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain, At: h.clock.Now().Add(-10 * time.Minute)})
		}, expect{code: verifier.CodeOK, atSource: verifier.AtGiven, revocation: verifier.RevocationGood}},
		{"fail/given-instant-after-the-revocation", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			h.clock.Add(20 * time.Minute)
			h.revoke(t, revocation.Request{Serial: w.serial, Reason: revocation.AffiliationChanged})
			h.clock.Add(10 * time.Minute)
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain, At: h.clock.Now().Add(-time.Minute)})
		}, expect{code: verifier.CodeRevoked, atSource: verifier.AtGiven, revocation: verifier.RevocationRevoked}},
		{"fail/given-instant-in-the-future", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain, At: h.clock.Now().Add(time.Hour)})
		}, expect{err: verifier.ErrInvalidRequest}},
		{"fail/given-instant-before-not-before", func(t *testing.T, h *harness) (*verifier.Result, error) {
			w := h.enroll(t, "deploy", "d-1")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: w.chain, At: w.leaf().NotBefore.Add(-time.Second)})
		}, expect{code: verifier.CodeExpired}},
		{"fail/server-certificate-has-no-spiffe-id", func(t *testing.T, h *harness) (*verifier.Result, error) {
			chain, _, err := h.ra.IssueServer(t.Context(), enroll.ServerCertRequest{DNSNames: []string{"ca.workers.test"}})
			if err != nil {
				t.Fatal(err)
			}
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: chain})
		}, expect{code: verifier.CodeSPIFFEIDInvalid}},
		{"fail/two-uri-sans", func(t *testing.T, h *harness) (*verifier.Result, error) {
			c := h.mint(t, "spiffe://"+testTrustDomain+"/worker/build/a", "spiffe://"+testTrustDomain+"/worker/build/b")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{c, h.h.Intermediate}})
		}, expect{code: verifier.CodeSPIFFEIDInvalid}},
		{"fail/not-a-worker-path", func(t *testing.T, h *harness) (*verifier.Result, error) {
			c := h.mint(t, "spiffe://"+testTrustDomain+"/admin/build/a")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{c, h.h.Intermediate}})
		}, expect{code: verifier.CodeSPIFFEIDInvalid}},
		{"fail/worker-path-too-deep", func(t *testing.T, h *harness) (*verifier.Result, error) {
			c := h.mint(t, "spiffe://"+testTrustDomain+"/worker/build/a/b")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{c, h.h.Intermediate}})
		}, expect{code: verifier.CodeSPIFFEIDInvalid}},
		{"fail/https-uri", func(t *testing.T, h *harness) (*verifier.Result, error) {
			c := h.mint(t, "https://"+testTrustDomain+"/worker/build/a")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{c, h.h.Intermediate}})
		}, expect{code: verifier.CodeSPIFFEIDInvalid}},
		{"fail/leaf-without-digital-signature", func(t *testing.T, h *harness) (*verifier.Result, error) {
			c := h.mintKU(t, x509.KeyUsageKeyEncipherment, "spiffe://"+testTrustDomain+"/worker/build/a")
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{c, h.h.Intermediate}})
		}, expect{code: verifier.CodeUntrustedChain}},
		{"fail/intermediate-as-leaf", func(t *testing.T, h *harness) (*verifier.Result, error) {
			return newVerifier(t, h.config()).Certificate(t.Context(), verifier.CertRequest{Chain: []*x509.Certificate{h.h.Intermediate}})
		}, expect{code: verifier.CodeUntrustedChain}},
	}
	runVerdictCases(t, tests)
}

// TestNew checks Config validation.
func TestNew(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch)
	crl := []*x509.RevocationList{{}}
	status := verifier.StatusSource(nil)
	priv := catest.Key(t, ca.KeyP256)
	pubKeys, privKeys := jwks(t, priv.Public()), jwks(t, priv)
	tests := []struct {
		name string
		cfg  verifier.Config
		err  error
	}{
		{"ok/crls", verifier.Config{Roots: h.Roots(), CRLs: crl}, nil},
		{"ok/no-revocation-check", verifier.Config{Roots: h.Roots(), NoRevocationCheck: true, StatusKeys: pubKeys, TrustDomain: "workers.example.com", AllowPools: []string{"a"}}, nil},
		{"fail/no-roots", verifier.Config{CRLs: crl}, verifier.ErrConfig},
		{"fail/no-revocation-source", verifier.Config{Roots: h.Roots(), Status: status}, verifier.ErrConfig},
		{"fail/crls-and-no-check", verifier.Config{Roots: h.Roots(), CRLs: crl, NoRevocationCheck: true}, verifier.ErrConfig},
		{"fail/nil-crl", verifier.Config{Roots: h.Roots(), CRLs: []*x509.RevocationList{nil}}, verifier.ErrConfig},
		{"fail/bad-trust-domain", verifier.Config{Roots: h.Roots(), CRLs: crl, TrustDomain: "Not A Domain"}, verifier.ErrConfig},
		{"fail/empty-pool", verifier.Config{Roots: h.Roots(), CRLs: crl, AllowPools: []string{""}}, verifier.ErrConfig},
		{"fail/private-status-key", verifier.Config{Roots: h.Roots(), CRLs: crl, StatusKeys: privKeys}, verifier.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := verifier.New(tc.cfg)
			if tc.err == nil && (err != nil || v == nil) || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("New = %v, %v; want error %v", v, err, tc.err)
			}
		})
	}
}
