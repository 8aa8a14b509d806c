package workertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// ClientConfig configures NewClientConfig: a worker connecting to a
// service with its workerca certificate.
type ClientConfig struct {
	// Dir is the worker's credential directory (KeyFile, ChainFile,
	// BundleFile), reloaded as SourceConfig describes. Required.
	Dir string
	// ReloadInterval is SourceConfig.ReloadInterval: 0 means
	// DefaultReloadInterval, negative means a stat on every handshake.
	ReloadInterval time.Duration
	// AuthorizeServer, when set, expects the server to present an
	// X509-SVID chaining to the bundle (any extended key usage, host
	// name ignored, as SPIFFE X509-SVID §5 prescribes) and decides on its
	// SPIFFE ID. When nil, the server is checked as ordinary TLS does: a
	// serverAuth certificate chaining to the bundle and naming the host
	// dialled (or ServerName).
	AuthorizeServer Authorizer
	// ServerName is the name the server's certificate must carry when
	// AuthorizeServer is nil; empty means the host dialled (it must then
	// be a DNS name: an IP address dialled needs ServerName).
	ServerName string
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives reloads; nil means slog.Default().
	Logger *slog.Logger
	// Keys is SourceConfig.Keys: set it when the key is not a PEM file
	// (a TPM key).
	Keys *KeyLoader
}

// NewClientConfig returns a TLS client configuration that presents the
// current key and chain of cfg.Dir and verifies the server against the
// current Dir/bundle.pem, at cfg.Clock's time. It does not keep TLS
// sessions (a resumed session would present the old certificate after a
// renewal). Use it as an http.Transport's TLSClientConfig.
func NewClientConfig(ctx context.Context, cfg ClientConfig) (*tls.Config, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	src, err := NewSource(ctx, SourceConfig{Dir: cfg.Dir, ReloadInterval: cfg.ReloadInterval, Clock: cfg.Clock, Logger: cfg.Logger, Keys: cfg.Keys})
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		Time:       cfg.Clock,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return src.Certificate(), nil
		},
		// The chain is verified in VerifyConnection, against the bundle
		// as it is at each handshake.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cfg, src.Roots(), cs)
		},
	}, nil
}

// verifyServer checks the server's chain as ClientConfig describes.
func verifyServer(cfg ClientConfig, roots *x509.CertPool, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the server sent no certificate", ErrUntrusted)
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: x509.NewCertPool(),
		CurrentTime:   cfg.Clock(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if cfg.AuthorizeServer == nil {
		opts.DNSName = cfg.ServerName
		if opts.DNSName == "" {
			opts.DNSName = cs.ServerName
		}
		if opts.DNSName == "" {
			return fmt.Errorf("%w: no server name to check (dialled an IP address? set ClientConfig.ServerName or AuthorizeServer)", ErrConfig)
		}
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("%w: server %s: %v", ErrUntrusted, opts.DNSName, err)
		}
		return nil
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("%w: server: %v", ErrUntrusted, err)
	}
	id, err := SVIDID(leaf)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := cfg.AuthorizeServer(id); err != nil {
		return fmt.Errorf("%w: server %s: %w", ErrNotAuthorized, id, err)
	}
	return nil
}

// serialHex is the serial as workerca writes it: lowercase hex of its
// bytes (what `openssl x509 -serial` prints, lowercased).
func serialHex(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		return "00"
	}
	return hex.EncodeToString(b)
}
