package ca

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.step.sm/crypto/kms"
	"go.step.sm/crypto/kms/apiv1"
	_ "go.step.sm/crypto/kms/softkms" // registers the softkms: file-key backend
	"go.step.sm/crypto/pemutil"
)

// LoadSigner returns the crypto.Signer that keyRef names, through
// go.step.sm/crypto/kms. keyRef is a go.step.sm/crypto/kms URI; a plain
// file path means softkms (a PEM key file). password decrypts an encrypted
// PEM key and may be nil.
//
// Only softkms is compiled in today; other URIs (pkcs11:, awskms:, ...)
// fail with "unsupported kms type" until their backend is linked.
func LoadSigner(ctx context.Context, keyRef string, password []byte) (crypto.Signer, error) {
	typ := apiv1.SoftKMS
	if i := strings.Index(keyRef, ":"); i > 0 && !strings.HasPrefix(keyRef, "/") {
		typ = apiv1.Type(strings.ToLower(keyRef[:i]))
	}
	km, err := kms.New(ctx, apiv1.Options{Type: typ, URI: uriFor(typ, keyRef)})
	if err != nil {
		return nil, fmt.Errorf("ca: key manager for %q: %w", keyRef, err)
	}
	signer, err := km.CreateSigner(&apiv1.CreateSignerRequest{SigningKey: keyRef, Password: password})
	if err != nil {
		return nil, fmt.Errorf("ca: load signing key %q: %w", keyRef, err)
	}
	return signer, nil
}

func uriFor(typ apiv1.Type, keyRef string) string {
	if typ == apiv1.SoftKMS {
		return ""
	}
	return keyRef
}

// WriteKey writes key as PKCS#8 PEM to path with mode 0600, encrypted
// (PBES2, AES-256-CBC) when password is not empty. It never overwrites an
// existing file.
func WriteKey(path string, key crypto.Signer, password []byte) error {
	opts := []pemutil.Options{pemutil.WithPKCS8(true)}
	if len(password) > 0 {
		opts = append(opts, pemutil.WithPassword(password))
	}
	block, err := pemutil.Serialize(key, opts...)
	if err != nil {
		return fmt.Errorf("ca: encode key: %w", err)
	}
	return writeNew(path, pemEncode(block), 0o600)
}

// ReadPasswordFile reads a passphrase file, trimming one trailing newline.
func ReadPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca: read password file: %w", err)
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) == 0 {
		return nil, errors.New("ca: password file is empty")
	}
	return b, nil
}

// writeNew creates path with perm and writes data, failing if it exists.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("ca: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("ca: close %s: %w", path, err)
	}
	return nil
}
