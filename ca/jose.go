package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// JOSEAlgorithms returns the JWS algorithms workerca signs with and
// accepts, one per key type (RFC 7518 §3.1, RFC 8037 §3.1): ES256, ES384,
// EdDSA and RS256.
func JOSEAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256}
}

// JOSEAlgorithm returns the one JWS algorithm that goes with a public key:
// ES256 for P-256, ES384 for P-384, EdDSA for Ed25519 and RS256 for RSA of
// at least 2048 bits. A JWS whose "alg" differs from it is refused, so a
// key is never used with two algorithms.
func JOSEAlgorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		}
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return jose.RS256, nil
		}
	}
	return "", fmt.Errorf("ca: a JWS key must be P-256, P-384, Ed25519 or RSA ≥ 2048, got %T", pub)
}

// JOSESigner is a JWS signer for one key and media type, with the public
// JWK that verifies its signatures.
type JOSESigner struct {
	// Signer signs; every signature's protected header carries alg, kid
	// (the RFC 7638 SHA-256 thumbprint of the public key) and typ.
	Signer jose.Signer
	// Public is the verifying key as a JWK with alg, use "sig" and kid.
	Public jose.JSONWebKey
}

// NewJOSESigner returns a signer for key whose signatures carry typ
// (RFC 7515 §4.1.9) and the key's thumbprint as kid.
func NewJOSESigner(key crypto.Signer, typ string) (*JOSESigner, error) {
	alg, err := JOSEAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ca: key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, fmt.Errorf("ca: JWS signer: %w", err)
	}
	return &JOSESigner{Signer: signer, Public: pub}, nil
}

// SignCompact signs payload and returns the compact serialization.
func (s *JOSESigner) SignCompact(payload []byte) (string, error) {
	obj, err := s.Signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("ca: JWS sign: %w", err)
	}
	return obj.CompactSerialize()
}

// VerifyWithKeySet verifies obj, which must carry one signature, with a
// key of keys and returns its payload. A key with a kid verifies only a
// JWS naming that kid (a key without one may verify any), and only with
// the key's one algorithm (JOSEAlgorithm), so a JWS cannot pick a weaker
// algorithm for a key. The error says why nothing verified; callers wrap
// it in their own kind.
func VerifyWithKeySet(obj *jose.JSONWebSignature, keys jose.JSONWebKeySet) ([]byte, error) {
	if len(obj.Signatures) != 1 {
		return nil, fmt.Errorf("want one signature, got %d", len(obj.Signatures))
	}
	h := obj.Signatures[0].Header
	for _, k := range keys.Keys {
		if k.KeyID != "" && h.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		alg, err := JOSEAlgorithm(k.Key)
		if err != nil || string(alg) != h.Algorithm {
			continue
		}
		if payload, err := obj.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("no trusted key verifies it (kid %q, alg %s)", h.KeyID, h.Algorithm)
}
