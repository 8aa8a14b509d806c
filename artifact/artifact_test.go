package artifact_test

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
)

var digest = hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("build output")); return s[:] }())

type worker struct {
	h     *catest.Hierarchy
	key   crypto.Signer
	chain []*x509.Certificate
}

func newWorker(t *testing.T, kt ca.KeyType) worker {
	t.Helper()
	h := catest.NewHierarchy(t, catest.Epoch)
	key := catest.Key(t, kt)
	leaf := h.Worker(t, key, "builders", "b-1", catest.Epoch, time.Hour)
	return worker{h: h, key: key, chain: []*x509.Certificate{leaf, h.Intermediate}}
}

func (w worker) signer() artifact.Signer { return artifact.Signer{Key: w.key, Chain: w.chain} }

func TestSignParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kt  ca.KeyType
		alg jose.SignatureAlgorithm
	}{
		{ca.KeyP256, jose.ES256}, {ca.KeyP384, jose.ES384}, {ca.KeyEd25519, jose.EdDSA}, {ca.KeyRSA, jose.RS256},
	} {
		t.Run("ok/"+string(tc.kt), func(t *testing.T) {
			t.Parallel()
			w := newWorker(t, tc.kt)
			jws, err := artifact.Sign(w.signer(), artifact.Payload{SHA256: digest, Name: "app.tar.gz"})
			if err != nil {
				t.Fatal(err)
			}
			sig, err := artifact.Parse(jws)
			if err != nil {
				t.Fatal(err)
			}
			if sig.Payload.SHA256 != digest || sig.Payload.Name != "app.tar.gz" || sig.Algorithm != tc.alg {
				t.Errorf("parsed %+v alg %s", sig.Payload, sig.Algorithm)
			}
			if len(sig.Chain) != 2 || !sig.Leaf().Equal(w.chain[0]) || !sig.Chain[1].Equal(w.h.Intermediate) {
				t.Errorf("chain not the x5c sent")
			}
			sum := sha256.Sum256([]byte(jws))
			if sig.Hash() != hex.EncodeToString(sum[:]) {
				t.Errorf("Hash = %s", sig.Hash())
			}
			// Any JWS library verifies it with the leaf key.
			obj, err := jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := obj.Verify(w.chain[0].PublicKey); err != nil {
				t.Errorf("go-jose: %v", err)
			}
			if typ := obj.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != artifact.SignatureType {
				t.Errorf("typ = %v", typ)
			}
		})
	}
}

// resign builds a compact JWS with the given protected header and payload,
// signed by key with alg, as a forger or another tool would.
func resign(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, payload []byte) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	for k, v := range hdr {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func x5c(chain ...*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	w := newWorker(t, ca.KeyP256)
	other := catest.Key(t, ca.KeyP256)
	p384 := catest.Key(t, ca.KeyP384)
	good, err := artifact.Sign(w.signer(), artifact.Payload{SHA256: digest})
	if err != nil {
		t.Fatal(err)
	}
	okPayload := []byte(`{"sha256":"` + digest + `"}`)
	hdr := func(extra map[jose.HeaderKey]any) map[jose.HeaderKey]any {
		m := map[jose.HeaderKey]any{"x5c": x5c(w.chain...), jose.HeaderType: artifact.SignatureType}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	parts := strings.Split(good, ".")
	tampered := []byte(digest)
	tampered[0] ^= 1
	for _, tc := range []struct {
		name string
		jws  string
		want error
	}{
		{"ok/no-typ", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{jose.HeaderType: nil}), okPayload), nil},
		{"fail/payload-tampered", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sha256":"`+string(tampered)+`"}`)) + "." + parts[2], artifact.ErrBadSignature},
		{"fail/signed-by-other-key", resign(t, other, jose.ES256, hdr(nil), okPayload), artifact.ErrBadSignature},
		{"fail/alg-not-the-leaf-keys", resign(t, p384, jose.ES384, hdr(nil), okPayload), artifact.ErrBadSignature},
		{"fail/no-x5c", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{"x5c": nil}), okPayload), artifact.ErrMalformed},
		{"fail/x5c-not-base64", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{"x5c": []string{"!!"}}), okPayload), artifact.ErrMalformed},
		{"fail/x5c-not-a-certificate", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{"x5c": []string{"AAAA"}}), okPayload), artifact.ErrMalformed},
		{"fail/typ-receipt", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{jose.HeaderType: artifact.ReceiptType}), okPayload), artifact.ErrMalformed},
		{"fail/crit", resign(t, w.key, jose.ES256, hdr(map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}), okPayload), artifact.ErrMalformed},
		{"fail/payload-unknown-field", resign(t, w.key, jose.ES256, hdr(nil), []byte(`{"sha256":"`+digest+`","x":1}`)), artifact.ErrMalformed},
		{"fail/payload-not-json", resign(t, w.key, jose.ES256, hdr(nil), []byte(`sha256`)), artifact.ErrMalformed},
		{"fail/digest-uppercase", resign(t, w.key, jose.ES256, hdr(nil), []byte(`{"sha256":"`+strings.ToUpper(digest)+`"}`)), artifact.ErrDigest},
		{"fail/digest-short", resign(t, w.key, jose.ES256, hdr(nil), []byte(`{"sha256":"abcd"}`)), artifact.ErrDigest},
		{"fail/name-too-long", resign(t, w.key, jose.ES256, hdr(nil), []byte(`{"sha256":"`+digest+`","name":"`+strings.Repeat("n", 257)+`"}`)), artifact.ErrMalformed},
		{"fail/name-control-char", resign(t, w.key, jose.ES256, hdr(nil), []byte(`{"sha256":"`+digest+`","name":"a\nb"}`)), artifact.ErrMalformed},
		{"fail/two-parts", parts[0] + "." + parts[1], artifact.ErrMalformed},
		{"fail/header-not-base64", "%%%." + parts[1] + "." + parts[2], artifact.ErrMalformed},
		{"fail/empty", "", artifact.ErrMalformed},
		{"fail/oversize", good + strings.Repeat("A", artifact.MaxSignatureBytes), artifact.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := artifact.Parse(tc.jws)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "artifact: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	t.Parallel()
	w := newWorker(t, ca.KeyP256)
	for _, tc := range []struct {
		name string
		s    artifact.Signer
		p    artifact.Payload
	}{
		{"fail/key-not-leafs", artifact.Signer{Key: catest.Key(t, ca.KeyP256), Chain: w.chain}, artifact.Payload{SHA256: digest}},
		{"fail/no-chain", artifact.Signer{Key: w.key}, artifact.Payload{SHA256: digest}},
		{"fail/bad-digest", w.signer(), artifact.Payload{SHA256: "xyz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := artifact.Sign(tc.s, tc.p); err == nil {
				t.Fatal("signed")
			}
		})
	}
}

func TestReceipt(t *testing.T) {
	t.Parallel()
	caKey := catest.Key(t, ca.KeyP256)
	rs, err := artifact.NewReceiptSigner(caKey)
	if err != nil {
		t.Fatal(err)
	}
	status, err := ca.NewJOSESigner(caKey, "workerca-status+jws")
	if err != nil {
		t.Fatal(err)
	}
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{status.Public}}
	want := artifact.Receipt{SHA256: digest, Serial: "0a1b", SPIFFEID: "spiffe://workers.test/worker/builders/b-1",
		RegisteredAt: catest.Epoch.Add(1500 * time.Millisecond), ExpiresAt: catest.Epoch.Add(90 * 24 * time.Hour), SignatureSHA256: digest}
	receipt, err := rs.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := artifact.ParseReceipt(receipt, keys)
	if err != nil {
		t.Fatal(err)
	}
	want.RegisteredAt = catest.Epoch.Add(time.Second)
	if got.SHA256 != want.SHA256 || got.Serial != want.Serial || got.SPIFFEID != want.SPIFFEID ||
		!got.RegisteredAt.Equal(want.RegisteredAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.SignatureSHA256 != digest {
		t.Errorf("receipt = %+v, want %+v", got, want)
	}

	otherSigner, err := artifact.NewReceiptSigner(catest.Key(t, ca.KeyP256))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := otherSigner.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	statusJWS, err := status.SignCompact([]byte(`{"serial":"0a1b"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The same claims signed by the right key without a kid still verify.
	payload, _ := json.Marshal(want)
	noKid := resign(t, caKey, jose.ES256, map[jose.HeaderKey]any{jose.HeaderType: artifact.ReceiptType}, payload)
	parts := strings.Split(receipt, ".")
	for _, tc := range []struct {
		name    string
		receipt string
		keys    jose.JSONWebKeySet
		want    error
	}{
		{"ok/no-kid", noKid, keys, nil},
		{"fail/signed-by-another-key", forged, keys, artifact.ErrBadSignature},
		{"fail/no-keys", receipt, jose.JSONWebKeySet{}, artifact.ErrBadSignature},
		{"fail/status-answer-not-a-receipt", statusJWS, keys, artifact.ErrMalformed},
		{"fail/tampered", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(mustDecode(t, parts[1])), "0a1b", "0a1c", 1))) + "." + parts[2], keys, artifact.ErrBadSignature},
		{"fail/garbage", "a.b.c", keys, artifact.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := artifact.ParseReceipt(tc.receipt, tc.keys)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writePEM(t *testing.T, path, typ string, ders ...[]byte) {
	t.Helper()
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSignerAndSignFile(t *testing.T) {
	t.Parallel()
	w := newWorker(t, ca.KeyP256)
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(w.key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "worker.key"), "PRIVATE KEY", keyDER)
	writePEM(t, filepath.Join(dir, "chain.pem"), "CERTIFICATE", w.chain[0].Raw, w.h.Intermediate.Raw, w.h.Root.Raw)
	writePEM(t, filepath.Join(dir, "wrong.pem"), "CERTIFICATE", w.h.Intermediate.Raw)
	if err := os.WriteFile(filepath.Join(dir, "app.bin"), []byte("build output"), 0o644); err != nil {
		t.Fatal(err)
	}

	s, err := artifact.LoadSigner(filepath.Join(dir, "worker.key"), filepath.Join(dir, "chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Chain) != 2 {
		t.Errorf("chain has %d certificates; the root should be left out of x5c", len(s.Chain))
	}
	jws, err := artifact.SignFile(filepath.Join(dir, "app.bin"), s, "app.bin")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := artifact.Parse(jws)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Payload.SHA256 != digest || sig.Payload.Name != "app.bin" {
		t.Errorf("payload %+v", sig.Payload)
	}
	if _, err := artifact.LoadSigner(filepath.Join(dir, "worker.key"), filepath.Join(dir, "wrong.pem")); err == nil {
		t.Error("fail/key-not-chain-leaf: loaded")
	}
	if _, err := artifact.LoadSigner(filepath.Join(dir, "missing.key"), filepath.Join(dir, "chain.pem")); err == nil {
		t.Error("fail/missing-key-file: loaded")
	}
	if _, err := artifact.DigestFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("fail/missing-file: digested")
	}
}
