package workertls

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Names of the files in a credential directory, as workerca-agent and
// enroll.sh write them. Each is replaced atomically (a temporary file
// renamed over it) on renewal.
const (
	// KeyFile is the worker's private key: PKCS#8 or SEC1 PEM, mode 0600.
	KeyFile = "key.pem"
	// CertFile is the leaf certificate alone.
	CertFile = "cert.pem"
	// ChainFile is the leaf followed by the intermediates.
	ChainFile = "chain.pem"
	// BundleFile is the trust roots, PEM.
	BundleFile = "bundle.pem"
)

// DefaultReloadInterval is how often a Source looks at its files when
// SourceConfig.ReloadInterval is zero.
const DefaultReloadInterval = 10 * time.Second

// SourceConfig configures a Source.
type SourceConfig struct {
	// Dir holds KeyFile, ChainFile (or CertFile when there is no chain
	// file) and BundleFile. Required.
	Dir string
	// ReloadInterval is the most often the files are stat'ed for a
	// change, on use: a renewal is picked up by the first handshake at
	// least ReloadInterval after the last look. 0 means
	// DefaultReloadInterval; negative means on every use.
	ReloadInterval time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives reloads and failed reloads; nil means
	// slog.Default().
	Logger *slog.Logger
	// Keys, when set, loads a key that is not a PEM file in Dir: see
	// KeyLoader. nil means KeyFile, read as PEM.
	Keys *KeyLoader
}

// KeyLoader loads a worker key that Dir names but does not hold, such as
// a key in the worker's TPM (workerca-agent's key.tpm.json). The pair is
// reloaded when File or the chain file is replaced.
//
//	open := func(dir string) (*tls.Certificate, error) { return agent.LoadCertificate(dir) }
//	workertls.ClientConfig{Dir: dir, Keys: &workertls.KeyLoader{File: agent.FileTPMKey, Load: open}}
type KeyLoader struct {
	// File is the name in Dir of the file whose replacement means a new
	// key, e.g. "key.tpm.json".
	File string
	// Load returns Dir's chain with its key (a crypto.Signer), Leaf set
	// or not; the key must be the leaf's.
	Load func(dir string) (*tls.Certificate, error)
}

// Source serves a credential directory's key, chain and bundle, reloading
// them when the files change. The key and chain are reloaded as a pair
// and must match; a partial or bad read (for example between the agent's
// renames of key.pem and chain.pem) is logged and the last good pair kept
// until a later look finds a good one. A Source runs no goroutine and
// needs no closing; it is safe for concurrent use.
type Source struct {
	cfg SourceConfig

	mu      sync.Mutex
	looked  time.Time
	pairAt  [2]os.FileInfo // key, chain as last loaded
	rootsAt os.FileInfo
	cert    *tls.Certificate
	roots   *x509.CertPool
}

// NewSource loads cfg.Dir. The files must be usable now.
func NewSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: no credential directory", ErrConfig)
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("workertls: load %s: %w", cfg.Dir, err)
	}
	s := &Source{cfg: cfg}
	if err := s.loadPair(); err != nil {
		return nil, err
	}
	if err := s.loadRoots(); err != nil {
		return nil, err
	}
	s.looked = cfg.Clock()
	return s, nil
}

// Certificate returns the current key and chain; Leaf is set.
func (s *Source) Certificate() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return s.cert
}

// Roots returns the current trust bundle.
func (s *Source) Roots() *x509.CertPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return s.roots
}

// refresh reloads what changed if ReloadInterval has passed since the
// last look. s.mu is held.
func (s *Source) refresh() {
	now := s.cfg.Clock()
	if s.cfg.ReloadInterval > 0 && now.Sub(s.looked) < s.cfg.ReloadInterval {
		return
	}
	s.looked = now
	key, kerr := os.Stat(s.keyPath())
	chain, cerr := os.Stat(s.chainPath())
	if kerr != nil || cerr != nil || !same(key, s.pairAt[0]) || !same(chain, s.pairAt[1]) {
		if err := s.loadPair(); err != nil {
			s.cfg.Logger.Warn("workertls: keeping the previous certificate", "dir", s.cfg.Dir, "err", err)
		} else {
			s.cfg.Logger.Info("workertls: certificate reloaded", "dir", s.cfg.Dir,
				"serial", serialHex(s.cert.Leaf), "not_after", s.cert.Leaf.NotAfter.UTC())
		}
	}
	roots, err := os.Stat(filepath.Join(s.cfg.Dir, BundleFile))
	if err != nil || !same(roots, s.rootsAt) {
		if err := s.loadRoots(); err != nil {
			s.cfg.Logger.Warn("workertls: keeping the previous trust bundle", "dir", s.cfg.Dir, "err", err)
		} else {
			s.cfg.Logger.Info("workertls: trust bundle reloaded", "dir", s.cfg.Dir)
		}
	}
}

// chainPath is ChainFile, or CertFile when there is no chain file.
func (s *Source) chainPath() string {
	p := filepath.Join(s.cfg.Dir, ChainFile)
	if _, err := os.Stat(p); err != nil {
		return filepath.Join(s.cfg.Dir, CertFile)
	}
	return p
}

// keyPath is KeyFile in Dir, or the KeyLoader's file.
func (s *Source) keyPath() string {
	if s.cfg.Keys != nil {
		return filepath.Join(s.cfg.Dir, s.cfg.Keys.File)
	}
	return filepath.Join(s.cfg.Dir, KeyFile)
}

// loadPair reads the key and chain and replaces the current pair if the
// key is the leaf's. The files are stat'ed before and after reading, so
// a pair read while one file was being replaced is not recorded as
// current and is read again at the next look.
func (s *Source) loadPair() error {
	keyPath, chainPath := s.keyPath(), s.chainPath()
	before, err := statPair(keyPath, chainPath)
	if err != nil {
		return err
	}
	cert, err := s.readPair(keyPath, chainPath)
	if err != nil {
		return err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrFiles, chainPath, err)
		}
	}
	after, err := statPair(keyPath, chainPath)
	if err != nil {
		return err
	}
	if !same(before[0], after[0]) || !same(before[1], after[1]) {
		return fmt.Errorf("%w: %s changed while being read", ErrFiles, s.cfg.Dir)
	}
	s.cert, s.pairAt = &cert, after
	return nil
}

// readPair reads the key and chain files, or has the KeyLoader load them.
func (s *Source) readPair(keyPath, chainPath string) (tls.Certificate, error) {
	if s.cfg.Keys != nil {
		c, err := s.cfg.Keys.Load(s.cfg.Dir)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w: %s: %v", ErrFiles, keyPath, err)
		}
		if len(c.Certificate) == 0 {
			return tls.Certificate{}, fmt.Errorf("%w: %s: no certificate", ErrFiles, keyPath)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w: %s: %v", ErrFiles, keyPath, err)
		}
		k, ok := c.PrivateKey.(crypto.Signer)
		pub, ok2 := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !ok2 || !pub.Equal(k.Public()) {
			return tls.Certificate{}, fmt.Errorf("%w: %s: the key is not the leaf's", ErrFiles, keyPath)
		}
		c.Leaf = leaf
		return *c, nil
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrFiles, err)
	}
	chainPEM, err := os.ReadFile(chainPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrFiles, err)
	}
	// X509KeyPair refuses a key that is not the first certificate's.
	cert, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %s and %s: %v", ErrFiles, keyPath, chainPath, err)
	}
	return cert, nil
}

func statPair(key, chain string) ([2]os.FileInfo, error) {
	k, err := os.Stat(key)
	if err != nil {
		return [2]os.FileInfo{}, fmt.Errorf("%w: %v", ErrFiles, err)
	}
	c, err := os.Stat(chain)
	if err != nil {
		return [2]os.FileInfo{}, fmt.Errorf("%w: %v", ErrFiles, err)
	}
	return [2]os.FileInfo{k, c}, nil
}

// loadRoots reads BundleFile.
func (s *Source) loadRoots() error {
	p := filepath.Join(s.cfg.Dir, BundleFile)
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFiles, err)
	}
	pool, err := readRoots(p)
	if err != nil {
		return err
	}
	s.roots, s.rootsAt = pool, fi
	return nil
}

// readRoots reads a PEM file of one or more certificates.
func readRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFiles, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrFiles, path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s holds no certificate", ErrFiles, path)
	}
	return pool, nil
}

// same reports whether a and b are the same file, unchanged: same inode
// (a rename replaces it), size and modification time.
func same(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
