package tpmwire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// EKSHA256 returns the lowercase hex SHA-256 of the PKIX
// SubjectPublicKeyInfo DER of an RSA or ECDSA public key: the identity of
// an EK, which the agent prints (workerca-agent tpm ek), an operator
// registers (workerca tpm register --ek-sha256), and from which the
// worker ID is derived. It lives here so that the agent and the server
// compute it with one function.
func EKSHA256(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.N.Sign() <= 0 {
			return "", errors.New("tpm: EK public key: empty RSA key")
		}
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return "", errors.New("tpm: EK public key: empty ECDSA key")
		}
	default:
		return "", fmt.Errorf("tpm: EK public key: %T, want RSA or ECDSA", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("tpm: EK public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
