package artifact

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"go.step.sm/crypto/pemutil"
)

// Digest returns the lowercase hex SHA-256 of everything r yields.
func Digest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("artifact: digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DigestFile returns the lowercase hex SHA-256 of the file at path.
func DigestFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	return Digest(f)
}

// SignFile signs the SHA-256 of the file at path, with name (may be
// empty) as the payload's name.
func SignFile(path string, s Signer, name string) (string, error) {
	digest, err := DigestFile(path)
	if err != nil {
		return "", err
	}
	return Sign(s, Payload{SHA256: digest, Name: name})
}

// LoadSigner reads a worker's key file (PEM: PKCS#8, SEC 1 or PKCS#1)
// and certificate chain file (PEM, leaf first), as the enrollment writes
// them, and checks that the key is the leaf's.
func LoadSigner(keyFile, chainFile string) (Signer, error) {
	k, err := pemutil.Read(keyFile)
	if err != nil {
		return Signer{}, fmt.Errorf("artifact: key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return Signer{}, fmt.Errorf("artifact: %s holds no private key", keyFile)
	}
	chain, err := pemutil.ReadCertificateBundle(chainFile)
	if err != nil {
		return Signer{}, fmt.Errorf("artifact: chain: %w", err)
	}
	if len(chain) == 0 {
		return Signer{}, errors.New("artifact: the chain file holds no certificate")
	}
	if !publicKeyEqual(key.Public(), chain[0].PublicKey) {
		return Signer{}, fmt.Errorf("artifact: the key in %s is not the first certificate's of %s", keyFile, chainFile)
	}
	return Signer{Key: key, Chain: trimRoot(chain)}, nil
}

// trimRoot drops a trailing self-signed certificate: x5c carries the
// chain up to, not including, the trust anchor.
func trimRoot(chain []*x509.Certificate) []*x509.Certificate {
	if n := len(chain); n > 1 {
		last := chain[n-1]
		if last.CheckSignatureFrom(last) == nil {
			return chain[:n-1]
		}
	}
	return chain
}
