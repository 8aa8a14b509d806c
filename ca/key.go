package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"

	"go.step.sm/crypto/keyutil"
)

// KeyType names a public key algorithm and size that a pool may accept.
type KeyType string

// The key types workerca knows. RSA means RSA with a modulus of at least
// MinRSABits and at most MaxRSABits.
const (
	KeyP256    KeyType = "P-256"
	KeyP384    KeyType = "P-384"
	KeyEd25519 KeyType = "Ed25519"
	KeyRSA     KeyType = "RSA"
)

// MinRSABits is the smallest RSA modulus accepted anywhere (NIST SP 800-131A).
const MinRSABits = 2048

// MaxRSABits bounds RSA keys so a CSR cannot make verification arbitrarily slow.
const MaxRSABits = 8192

// DefaultKeyTypes are the key types a pool accepts when its configuration
// names none.
var DefaultKeyTypes = []KeyType{KeyP256, KeyP384, KeyEd25519, KeyRSA}

// ParseKeyType returns the KeyType named by s (case-insensitive).
func ParseKeyType(s string) (KeyType, error) {
	for _, k := range DefaultKeyTypes {
		if strings.EqualFold(string(k), s) {
			return k, nil
		}
	}
	return "", fmt.Errorf("ca: unknown key type %q (want one of P-256, P-384, Ed25519, RSA)", s)
}

// KeyTypeOf classifies a public key. It fails with ErrKeyNotAllowed for keys
// workerca never accepts (other curves, RSA outside the size bounds, DSA).
func KeyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyP256, nil
		case elliptic.P384():
			return KeyP384, nil
		}
		return "", fmt.Errorf("%w: ECDSA curve %s", ErrKeyNotAllowed, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return KeyEd25519, nil
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < MinRSABits || bits > MaxRSABits {
			return "", fmt.Errorf("%w: RSA-%d (want %d to %d bits)", ErrKeyNotAllowed, bits, MinRSABits, MaxRSABits)
		}
		return KeyRSA, nil
	}
	return "", fmt.Errorf("%w: key type %T", ErrKeyNotAllowed, pub)
}

// GenerateKey makes a new private key of the given type from crypto/rand.
// RSA keys are 3072 bits.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch kt {
	case KeyP256:
		key, err = keyutil.GenerateKey("EC", "P-256", 0)
	case KeyP384:
		key, err = keyutil.GenerateKey("EC", "P-384", 0)
	case KeyEd25519:
		key, err = keyutil.GenerateKey("OKP", "Ed25519", 0)
	case KeyRSA:
		key, err = keyutil.GenerateKey("RSA", "", 3072)
	default:
		return nil, fmt.Errorf("ca: cannot generate key type %q", kt)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: generate %s key: %w", kt, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: generated key %T is not a signer", key)
	}
	return signer, nil
}
