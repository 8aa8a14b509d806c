package ca_test

import (
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
)

// TestVerifyWithKeySet: a JWS verifies with the key its kid names, or a
// key without a kid, and only with that key's one algorithm; a key with
// another kid, another key, or a JWS with a downgraded alg do not.
func TestVerifyWithKeySet(t *testing.T) {
	t.Parallel()
	key, other := catest.Key(t, ca.KeyP256), catest.Key(t, ca.KeyP384)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := obj.CompactSerialize()
	parsed, err := jose.ParseSignedCompact(compact, ca.JOSEAlgorithms())
	if err != nil {
		t.Fatal(err)
	}
	set := func(keys ...jose.JSONWebKey) jose.JSONWebKeySet { return jose.JSONWebKeySet{Keys: keys} }
	for _, c := range []struct {
		name string
		keys jose.JSONWebKeySet
		want string // "" verifies
	}{
		{"ok/kid", set(jose.JSONWebKey{Key: other.Public(), KeyID: "k2"}, jose.JSONWebKey{Key: key.Public(), KeyID: "k1"}), ""},
		{"ok/no-kid", set(jose.JSONWebKey{Key: key.Public()}), ""},
		{"fail/other-kid", set(jose.JSONWebKey{Key: key.Public(), KeyID: "k2"}), "no trusted key"},
		{"fail/other-key", set(jose.JSONWebKey{Key: other.Public(), KeyID: "k1"}), "no trusted key"},
		{"fail/empty", set(), "no trusted key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ca.VerifyWithKeySet(parsed, c.keys)
			switch {
			case c.want == "" && (err != nil || string(got) != "payload"):
				t.Fatalf("= %q, %v; want the payload", got, err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	// The key's algorithm, not the JWS's, decides: an RSA key signs RS256
	// here, so a PS256 JWS by that very key is refused.
	rsaKey := catest.Key(t, ca.KeyRSA)
	ps, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: rsaKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	psObj, err := ps.Sign([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := psObj.Verify(rsaKey.Public()); err != nil {
		t.Fatalf("the PS256 JWS does not verify with its key at all: %v", err)
	}
	if _, err := ca.VerifyWithKeySet(psObj, set(jose.JSONWebKey{Key: rsaKey.Public()})); err == nil {
		t.Error("a JWS whose alg is not its key's verified")
	}
	two := *parsed
	two.Signatures = append(two.Signatures, two.Signatures[0])
	if _, err := ca.VerifyWithKeySet(&two, set(jose.JSONWebKey{Key: key.Public()})); err == nil || !strings.Contains(err.Error(), "one signature") {
		t.Errorf("two signatures: %v", err)
	}
}
