package gcpiit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
)

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func validJWKS(t *testing.T) []byte {
	t.Helper()
	return gcpiittest.NewProvider(t).JWKS()
}

func TestKeySetFile(t *testing.T) {
	t.Parallel()
	p := gcpiittest.NewProvider(t, gcpiittest.WithClock(fixed(epoch)))
	tok := p.Token(t, gcpiittest.Claims{Audience: aud})
	jwksFile, v1File := p.WriteJWKSFile(t), p.WriteV1CertsFile(t)
	rotated := gcpiittest.NewProvider(t, gcpiittest.WithClock(fixed(epoch)))
	previous := rotated.Token(t, gcpiittest.Claims{Audience: aud})
	rotated.Rotate(t)
	rotatedFile := rotated.WriteJWKSFile(t)
	tests := []struct {
		name string
		file string
		tok  string
		want error
	}{
		{"ok/jwks-file", jwksFile, tok, nil},
		{"ok/v1-certs-file", v1File, tok, nil},
		{"ok/rotated-set-previous-key", rotatedFile, previous, nil},
		{"ok/rotated-set-current-key", rotatedFile, rotated.Token(t, gcpiittest.Claims{Audience: aud}), nil},
		{"fail/kid-not-in-jwks-file", jwksFile, p.SignedToken(t, gcpiittest.Claims{Audience: aud}, gcpiittest.UnknownKid), gcpiit.ErrSignature},
		{"fail/kid-not-in-v1-certs-file", v1File, p.SignedToken(t, gcpiittest.Claims{Audience: aud}, gcpiittest.UnknownKid), gcpiit.ErrSignature},
		{"fail/signature-wrong-key", jwksFile, p.SignedToken(t, gcpiittest.Claims{Audience: aud}, gcpiittest.WrongKey), gcpiit.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := gcpiit.New(gcpiit.Config{JWKSFile: tc.file, Clock: fixed(epoch)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(context.Background(), gcpiit.Evidence{Token: tc.tok}, gcpiit.Policy{Audience: aud})
			checkErr(t, err, tc.want)
		})
	}
	t.Run("ok/file-never-fetches", func(t *testing.T) {
		if n := p.Fetches(); n != 0 {
			t.Errorf("key set fetched %d times in file mode", n)
		}
	})
}

// TestKeySetFile_Parse checks which key set files New accepts.
func TestKeySetFile_Parse(t *testing.T) {
	t.Parallel()
	rsaKey := func(bits int) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good, small := rsaKey(2048), rsaKey(1024)
	jwk := func(key any, kid, alg, use string) jose.JSONWebKey {
		return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: use}
	}
	jwks := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certPEM := func(pub, priv any) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "federated-signon.system.gserviceaccount.com"},
			NotBefore: epoch, NotAfter: epoch.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	v1 := func(m map[string]string) []byte {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	goodPEM := certPEM(&good.PublicKey, good)
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"ok/jwks-one-rsa-key", jwks(jwk(&good.PublicKey, "k1", "RS256", "sig")), true},
		{"ok/jwks-without-alg-and-use", jwks(jwk(&good.PublicKey, "k1", "", "")), true},
		{"ok/jwks-foreign-keys-skipped", jwks(jwk(&ecKey.PublicKey, "ec", "ES256", "sig"), jwk(&good.PublicKey, "enc", "RSA-OAEP", "enc"),
			jwk(&good.PublicKey, "k1", "RS256", "sig")), true},
		{"ok/jwks-unknown-kty-skipped", []byte(`{"keys":[{"kty":"PQC","kid":"x"},` + string(jwks(jwk(&good.PublicKey, "k1", "RS256", "sig")))[9:]), true},
		{"ok/v1-certs", v1(map[string]string{"k1": goodPEM}), true},
		{"fail/not-json", []byte("-----BEGIN CERTIFICATE-----"), false},
		{"fail/json-array", []byte(`[]`), false},
		{"fail/empty-object", []byte(`{}`), false},
		{"fail/jwks-empty", jwks(), false},
		{"fail/jwks-keys-not-array", []byte(`{"keys":{}}`), false},
		{"fail/jwks-only-foreign-keys", jwks(jwk(&ecKey.PublicKey, "ec", "ES256", "sig")), false},
		{"fail/jwks-rsa-1024", jwks(jwk(&small.PublicKey, "k1", "RS256", "sig")), false},
		{"fail/jwks-kid-missing", jwks(jwk(&good.PublicKey, "", "RS256", "sig")), false},
		{"fail/jwks-kid-duplicate", jwks(jwk(&good.PublicKey, "k1", "RS256", "sig"), jwk(&small.PublicKey, "k1", "RS256", "sig")), false},
		{"fail/jwks-rsa-without-n", []byte(`{"keys":[{"kty":"RSA","kid":"k1","e":"AQAB"}]}`), false},
		{"fail/v1-value-not-string", []byte(`{"k1":{"n":"x"}}`), false},
		{"fail/v1-value-not-pem", v1(map[string]string{"k1": "MIIB..."}), false},
		{"fail/v1-public-key-not-certificate", v1(map[string]string{"k1": strings.ReplaceAll(goodPEM, "CERTIFICATE", "PUBLIC KEY")}), false},
		{"fail/v1-two-certificates", v1(map[string]string{"k1": goodPEM + goodPEM}), false},
		{"fail/v1-ec-certificate", v1(map[string]string{"k1": certPEM(&ecKey.PublicKey, ecKey)}), false},
		{"fail/v1-rsa-1024-certificate", v1(map[string]string{"k1": certPEM(&small.PublicKey, small)}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := gcpiit.New(gcpiit.Config{JWKSFile: writeTemp(t, tc.data)})
			if tc.ok {
				checkErr(t, err, nil)
			} else {
				checkErr(t, err, errAny)
			}
		})
	}
}
