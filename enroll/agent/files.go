package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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

// install puts a new key and its chain in place. Order: the key (key.pem,
// or for a TPM key the reference key.tpm.json) goes to its .next name
// first, then chain.pem and cert.pem are replaced, then the .next file is
// renamed into place, then the other kind's key file, stale if the
// enrollment switched between a file key and a TPM key, is removed. A
// crash leaves either the old pair, or the new certificate with the new
// key in the .next file, which load completes. Between the last renames
// a reader can see the new certificate with the old key: LoadCertificate
// checks the pair and reads again. Only once all this is on disk is the
// TPM key the new one supersedes deleted from the TPM store.
func (a *Agent) install(key crypto.Signer, chain []*x509.Certificate) error {
	name, next, stale := FileKey, fileKeyNext, FileTPMKey
	var data []byte
	ts, isTPM := key.(*tpmSigner)
	if isTPM {
		name, next, stale = FileTPMKey, fileTPMKeyNext, FileKey
		b, err := json.Marshal(ts.ref)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		data = append(b, '\n')
	} else {
		b, err := encodeKey(key)
		if err != nil {
			return err
		}
		data = b
	}
	old, _ := a.currentTPMKey()
	if err := a.writeFiles(
		fileWrite{next, data, 0o600},
		fileWrite{FileChain, encodeCerts(chain...), 0o644},
		fileWrite{FileCert, encodeCerts(chain[0]), 0o644},
	); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(a.cfg.Dir, next), filepath.Join(a.cfg.Dir, name)); err != nil {
		return fmt.Errorf("agent: replacing %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(a.cfg.Dir, stale)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: removing the stale %s: %w", stale, err)
	}
	if err := syncDir(a.cfg.Dir); err != nil {
		return err
	}
	if old != nil && (!isTPM || old.ref != ts.ref) {
		a.dropTPMKey(context.Background(), old)
	}
	return nil
}

// currentTPMKey is the TPM key key.tpm.json names now (a signer without
// a TPM handle, enough for dropTPMKey), or nil.
func (a *Agent) currentTPMKey() (*tpmSigner, error) {
	b, err := os.ReadFile(filepath.Join(a.cfg.Dir, FileTPMKey))
	if err != nil {
		return nil, err
	}
	ref, err := parseTPMKeyRef(b)
	if err != nil {
		return nil, err
	}
	return &tpmSigner{ref: ref}, nil
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
	o := WithTPMOpener(a.cfg.TPM.Open)
	tc, err := LoadCertificate(a.cfg.Dir, o)
	if err == nil || errors.Is(err, ErrNotEnrolled) {
		return tc, err
	}
	chainPEM, err2 := os.ReadFile(filepath.Join(a.cfg.Dir, FileChain))
	if err2 != nil {
		return nil, err
	}
	lo := loadOptions{open: a.cfg.TPM.Open}
	for _, f := range []struct{ next, name string }{{fileKeyNext, FileKey}, {fileTPMKeyNext, FileTPMKey}} {
		next := filepath.Join(a.cfg.Dir, f.next)
		keyData, err3 := os.ReadFile(next)
		if err3 != nil {
			continue
		}
		if _, err := pairWith(a.cfg.Dir, f.next, keyData, chainPEM, lo); err == nil {
			if err := os.Rename(next, filepath.Join(a.cfg.Dir, f.name)); err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
			a.log.Warn("completed an interrupted certificate installation")
			return LoadCertificate(a.cfg.Dir, o)
		}
	}
	return nil, err
}

// pairWith is chainPEM with the key in keyData, read from the file name
// (key.pem or key.tpm.json, or their .next), if the key is the leaf's.
func pairWith(dir, name string, keyData, chainPEM []byte, o loadOptions) (*tls.Certificate, error) {
	if name == FileTPMKey || name == fileTPMKeyNext {
		return tpmPair(dir, keyData, chainPEM, o)
	}
	tc, err := tls.X509KeyPair(chainPEM, keyData)
	if err != nil {
		return nil, err
	}
	return &tc, nil
}

// LoadCertificate reads dir's chain.pem and its key as a TLS certificate
// (Leaf set): key.pem, or for a TPM enrollment the TPM key that
// key.tpm.json names, whose PrivateKey is then a crypto.Signer that signs
// in the TPM (opened with OpenTPM unless WithTPMOpener says otherwise, at
// each signature). The agent replaces the files one at a time, so a
// mismatched pair is read again a few times before it is an error.
// It returns an error wrapping ErrNotEnrolled when the files are absent.
func LoadCertificate(dir string, opts ...LoadOption) (*tls.Certificate, error) {
	o := loadOptions{open: OpenTPM}
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
		}
		var (
			tc    *tls.Certificate
			retry bool
		)
		if tc, retry, err = loadPair(dir, o); err == nil {
			return tc, nil
		}
		if !retry {
			break
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNotEnrolled, err)
	}
	return nil, fmt.Errorf("agent: %s: %w", dir, err)
}

// loadPair reads chain.pem and pairs it with key.tpm.json's key, else
// key.pem's: the first that is the leaf's. Both can be present for a
// moment when an enrollment switches kinds. retry is true when the files
// were there but did not pair.
func loadPair(dir string, o loadOptions) (tc *tls.Certificate, retry bool, err error) {
	chainPEM, err := os.ReadFile(filepath.Join(dir, FileChain))
	if err != nil {
		return nil, false, err
	}
	var missing error
	for _, name := range []string{FileTPMKey, FileKey} {
		keyData, rerr := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(rerr, os.ErrNotExist) {
			missing = rerr // key.pem's, when neither is there
			continue
		}
		if rerr != nil {
			return nil, false, rerr
		}
		if tc, err = pairWith(dir, name, keyData, chainPEM, o); err == nil {
			return tc, false, nil
		}
		retry = true
	}
	if !retry {
		return nil, false, missing
	}
	return nil, true, err
}
