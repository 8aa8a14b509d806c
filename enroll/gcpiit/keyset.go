package gcpiit

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	jose "github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA modulus accepted in a key set. Google's
// keys are 2048-bit.
const minRSABits = 2048

// keySet maps a key ID (the JWS "kid") to Google's RSA public key.
type keySet map[string]*rsa.PublicKey

// keySource finds the public key for a kid. Errors wrap ErrSignature
// (unknown kid) or ErrKeysUnavailable.
type keySource interface {
	key(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// parseKeySet reads the two forms Google publishes:
//
//   - a JWK Set (RFC 7517 §5), as served at
//     https://www.googleapis.com/oauth2/v3/certs;
//   - an object mapping kid to a PEM certificate, as served at
//     https://www.googleapis.com/oauth2/v1/certs.
//
// In a JWK Set, keys that are not RSA signature keys for RS256 are
// skipped, so a key type Google may add later does not break the set.
// RSA keys must be well formed and at least 2048 bits, kids unique, and
// at least one key usable. The certificates' validity periods are not
// checked: they are self-signed and trust comes from the set itself.
func parseKeySet(data []byte) (keySet, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("key set is not a JSON object: %v", err)
	}
	var (
		set keySet
		err error
	)
	if raw, ok := top["keys"]; ok {
		set, err = parseJWKS(raw)
	} else {
		set, err = parseCertMap(top)
	}
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return nil, errors.New("key set holds no RS256 key")
	}
	return set, nil
}

// parseJWKS reads the "keys" member of a JWK Set.
func parseJWKS(raw json.RawMessage) (keySet, error) {
	var keys []json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, fmt.Errorf("JWKS keys is not an array: %v", err)
	}
	set := keySet{}
	for i, k := range keys {
		var hdr struct {
			Kty string `json:"kty"`
			Alg string `json:"alg"`
			Use string `json:"use"`
		}
		if err := json.Unmarshal(k, &hdr); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %v", i, err)
		}
		if hdr.Kty != "RSA" || (hdr.Alg != "" && hdr.Alg != string(jose.RS256)) || (hdr.Use != "" && hdr.Use != "sig") {
			continue // not a key Google signs identity tokens with
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %v", i, err)
		}
		pub, ok := jwk.Public().Key.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("JWKS key %d (kid %q): not an RSA public key", i, jwk.KeyID)
		}
		if err := set.add(jwk.KeyID, pub); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
	}
	return set, nil
}

// parseCertMap reads Google's v1 form: {"<kid>": "<PEM certificate>"}.
func parseCertMap(top map[string]json.RawMessage) (keySet, error) {
	set := keySet{}
	for kid, raw := range top {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("kid %q: value is not a PEM string (want a JWKS or Google's v1 {kid: PEM} form)", kid)
		}
		block, rest := pem.Decode([]byte(s))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("kid %q: no PEM CERTIFICATE block", kid)
		}
		if b, _ := pem.Decode(rest); b != nil {
			return nil, fmt.Errorf("kid %q: more than one PEM block", kid)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("kid %q: %v", kid, err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("kid %q: certificate key is %T, not RSA", kid, cert.PublicKey)
		}
		if err := set.add(kid, pub); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func (s keySet) add(kid string, pub *rsa.PublicKey) error {
	switch {
	case kid == "":
		return errors.New("key without a kid")
	case pub.N.BitLen() < minRSABits:
		return fmt.Errorf("kid %q: RSA key of %d bits, want at least %d", kid, pub.N.BitLen(), minRSABits)
	case s[kid] != nil:
		return fmt.Errorf("kid %q appears twice", kid)
	}
	s[kid] = pub
	return nil
}

// fileKeySet is a key set pinned from a file, read once by New.
type fileKeySet struct {
	path string
	keys keySet
}

func loadKeySetFile(path string) (*fileKeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := parseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &fileKeySet{path: path, keys: keys}, nil
}

func (f *fileKeySet) key(_ context.Context, kid string) (*rsa.PublicKey, error) {
	if k := f.keys[kid]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: key ID %q is not in the pinned key set %s", ErrSignature, kid, f.path)
}
