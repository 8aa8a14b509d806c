package agent

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The files the agent keeps in its directory.
const (
	// FileKey is the private key, PKCS#8 PEM, mode 0600.
	FileKey = "key.pem"
	// FileCert is the worker certificate alone, PEM.
	FileCert = "cert.pem"
	// FileChain is the worker certificate followed by its
	// intermediates, PEM: what a TLS server or client presents.
	FileChain = "chain.pem"
	// FileBundle is the CA's roots, PEM: the trust anchors.
	FileBundle = "bundle.pem"
	// fileKeyNext holds a new key until its certificate is in place.
	fileKeyNext = "key.pem.next"
)

type fileWrite struct {
	name string
	data []byte
	mode os.FileMode
}

// writeFile replaces dir/name atomically: a temporary file in the same
// directory, written, synced, chmod'ed, then renamed over the old one.
// A reader sees the old file or the new one, never part of one.
func writeFile(dir, name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("agent: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("agent: writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("agent: syncing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("agent: replacing %s: %w", name, err)
	}
	return nil
}

// writeFiles makes the directory (0700) if needed, replaces each file
// atomically in order, and syncs the directory.
func (a *Agent) writeFiles(files ...fileWrite) error {
	if err := os.MkdirAll(a.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	for _, f := range files {
		if err := writeFile(a.cfg.Dir, f.name, f.data, f.mode); err != nil {
			return err
		}
	}
	return syncDir(a.cfg.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("agent: syncing %s: %w", dir, err)
	}
	return nil
}

// install puts a new key and its chain in place. Order: the key goes to
// key.pem.next first, then chain.pem and cert.pem are replaced, then
// key.pem.next is renamed to key.pem. A crash leaves either the old pair,
// or the new certificate with the new key in key.pem.next, which load
// completes. Between the last two renames a reader can see the new
// certificate with the old key: LoadCertificate checks the pair and reads
// again.
func (a *Agent) install(key crypto.Signer, chain []*x509.Certificate) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := a.writeFiles(
		fileWrite{fileKeyNext, keyPEM, 0o600},
		fileWrite{FileChain, encodeCerts(chain...), 0o644},
		fileWrite{FileCert, encodeCerts(chain[0]), 0o644},
	); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(a.cfg.Dir, fileKeyNext), filepath.Join(a.cfg.Dir, FileKey)); err != nil {
		return fmt.Errorf("agent: replacing %s: %w", FileKey, err)
	}
	return syncDir(a.cfg.Dir)
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// load reads the current key and chain, finishing an install a crash
// interrupted. It returns ErrNotEnrolled when there is no certificate.
func (a *Agent) load() (*tls.Certificate, error) {
	tc, err := LoadCertificate(a.cfg.Dir)
	if err == nil || errors.Is(err, ErrNotEnrolled) {
		return tc, err
	}
	next := filepath.Join(a.cfg.Dir, fileKeyNext)
	chainPEM, err2 := os.ReadFile(filepath.Join(a.cfg.Dir, FileChain))
	keyPEM, err3 := os.ReadFile(next)
	if err2 == nil && err3 == nil {
		if _, err := tls.X509KeyPair(chainPEM, keyPEM); err == nil {
			if err := os.Rename(next, filepath.Join(a.cfg.Dir, FileKey)); err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			a.log.Warn("completed an interrupted certificate installation")
			return LoadCertificate(a.cfg.Dir)
		}
	}
	return nil, err
}

// LoadCertificate reads dir's chain.pem and key.pem as a TLS
// certificate (Leaf set). The agent replaces the files one at a time, so
// a mismatched pair is read again a few times before it is an error.
// It returns an error wrapping ErrNotEnrolled when the files are absent.
func LoadCertificate(dir string) (*tls.Certificate, error) {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
		}
		var chainPEM, keyPEM []byte
		if chainPEM, err = os.ReadFile(filepath.Join(dir, FileChain)); err != nil {
			break
		}
		if keyPEM, err = os.ReadFile(filepath.Join(dir, FileKey)); err != nil {
			break
		}
		var tc tls.Certificate
		if tc, err = tls.X509KeyPair(chainPEM, keyPEM); err == nil {
			return &tc, nil
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	return nil, fmt.Errorf("agent: %s: %w", dir, err)
}
