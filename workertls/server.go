package workertls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"
)

// Defaults of ServerConfig.
const (
	// DefaultRefreshInterval bounds how long a fetched CRL is used before
	// it is fetched again, so that a revocation is seen within it.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultFetchTimeout bounds one CRL fetch of the default HTTP client.
	DefaultFetchTimeout = 10 * time.Second
)

// ServerConfig configures NewServerConfig: a service accepting workers
// over mTLS.
type ServerConfig struct {
	// Authorize decides on each verified worker's SPIFFE ID (AllowPools,
	// AllowIDs, or your own). Required: there is no "allow any".
	Authorize Authorizer

	// Bundle holds the trust roots client chains must verify to (the CA's
	// GET /v1/bundle). Exactly one of Bundle and BundleFile may be set;
	// with neither, Dir/bundle.pem is used and reloaded with the key.
	Bundle *x509.CertPool
	// BundleFile is a PEM file of trust roots, read once by
	// NewServerConfig.
	BundleFile string

	// Certificate is the service's own certificate. Exactly one of
	// Certificate and Dir must be set.
	Certificate *tls.Certificate
	// Dir is a credential directory holding the service's own key and
	// chain (enrolled like a worker, kept fresh by workerca-agent), reloaded
	// as SourceConfig describes.
	Dir string
	// ReloadInterval is SourceConfig.ReloadInterval for Dir.
	ReloadInterval time.Duration
	// Keys is SourceConfig.Keys for Dir: set it when the key is not a
	// PEM file (a TPM key).
	Keys *KeyLoader

	// RefreshInterval is the longest a fetched CRL is used before it is
	// fetched again (it is also never used past its nextUpdate), so a
	// revocation is seen within RefreshInterval of the CA publishing it.
	// 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// FailOpen accepts a worker whose revocation status cannot be
	// established (no CRL could be fetched, verified or is fresh),
	// logging a warning. The default, false, refuses it.
	FailOpen bool
	// HTTPClient fetches CRLs from the certificates' CRL distribution
	// points; nil means a client with a DefaultFetchTimeout timeout.
	// CRLs are signed, so plain HTTP is fine.
	HTTPClient *http.Client
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives refusals, CRL fetches and reloads; nil means
	// slog.Default().
	Logger *slog.Logger
}

// NewServerConfig returns a TLS server configuration that requires a
// client certificate and accepts a worker only if, at cfg.Clock's time:
//
//  1. its chain verifies to the bundle with the clientAuth extended key
//     usage (RFC 5280 §6, crypto/x509);
//  2. its leaf is an X509-SVID with exactly one SPIFFE ID (SVIDID);
//  3. cfg.Authorize allows that ID;
//  4. it is not on its issuer's CRL: the CRL at the leaf's CRL
//     distribution point (RFC 5280 §4.2.1.13), fetched on first sight
//     and again after RefreshInterval or its nextUpdate, whichever comes
//     first; signed by the leaf's issuer; whose issuingDistributionPoint,
//     if any, names that URL and covers all reasons and end-entity
//     certificates (RFC 5280 §5.2.5). When a refetch fails, the CRL held
//     is still used until its nextUpdate. With no usable CRL the worker is
//     refused, unless cfg.FailOpen.
//
// The checks run in VerifyConnection, so they also run on resumed
// sessions. Handlers read the caller's ID with PeerID. Refusals are
// logged with the reason; the client sees a TLS alert.
func NewServerConfig(ctx context.Context, cfg ServerConfig) (*tls.Config, error) {
	if cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: ServerConfig.Authorize is required", ErrConfig)
	}
	if (cfg.Certificate == nil) == (cfg.Dir == "") {
		return nil, fmt.Errorf("%w: set exactly one of ServerConfig.Certificate and ServerConfig.Dir", ErrConfig)
	}
	if cfg.Bundle != nil && cfg.BundleFile != "" {
		return nil, fmt.Errorf("%w: set at most one of ServerConfig.Bundle and ServerConfig.BundleFile", ErrConfig)
	}
	if cfg.Bundle == nil && cfg.BundleFile == "" && cfg.Dir == "" {
		return nil, fmt.Errorf("%w: no trust bundle: set Bundle, BundleFile or Dir", ErrConfig)
	}
	if cfg.RefreshInterval < 0 {
		return nil, fmt.Errorf("%w: negative RefreshInterval %s", ErrConfig, cfg.RefreshInterval)
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BundleFile != "" {
		pool, err := readRoots(cfg.BundleFile)
		if err != nil {
			return nil, err
		}
		cfg.Bundle = pool
	}
	v := &serverVerifier{cfg: cfg, crls: newCRLCache(cfg)}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		Time:       cfg.Clock,
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			// crypto/tls gives VerifyConnection no context; the fetch is
			// bounded by the HTTP client's timeout and this one.
			ctx, cancel := context.WithTimeout(context.Background(), DefaultFetchTimeout)
			defer cancel()
			return v.verify(ctx, cs.PeerCertificates)
		},
	}
	if cfg.Certificate != nil {
		tc.Certificates = []tls.Certificate{*cfg.Certificate}
		return tc, nil
	}
	src, err := NewSource(ctx, SourceConfig{Dir: cfg.Dir, ReloadInterval: cfg.ReloadInterval, Clock: cfg.Clock, Logger: cfg.Logger, Keys: cfg.Keys})
	if err != nil {
		return nil, fmt.Errorf("%w (ServerConfig.Dir %s)", err, filepath.Clean(cfg.Dir))
	}
	v.src = src
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return src.Certificate(), nil }
	return tc, nil
}

// serverVerifier runs NewServerConfig's checks.
type serverVerifier struct {
	cfg  ServerConfig
	src  *Source // nil unless cfg.Dir
	crls *crlCache
}

// roots is the configured bundle, or the Source's current one.
func (v *serverVerifier) roots() *x509.CertPool {
	if v.cfg.Bundle != nil {
		return v.cfg.Bundle
	}
	return v.src.Roots()
}

// verify checks a client's chain, leaf first, and logs a refusal.
func (v *serverVerifier) verify(ctx context.Context, chain []*x509.Certificate) error {
	err := v.check(ctx, chain)
	if err != nil {
		attrs := []any{"err", err}
		if len(chain) > 0 {
			attrs = append(attrs, "serial", serialHex(chain[0]))
			if len(chain[0].URIs) == 1 {
				attrs = append(attrs, "uri", chain[0].URIs[0].String())
			}
		}
		v.cfg.Logger.Info("workertls: worker refused", attrs...)
	}
	return err
}

func (v *serverVerifier) check(ctx context.Context, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no client certificate", ErrUntrusted)
	}
	leaf := chain[0]
	opts := x509.VerifyOptions{
		Roots:         v.roots(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   v.cfg.Clock(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	id, err := SVIDID(leaf)
	if err != nil {
		return err
	}
	if err := v.cfg.Authorize(id); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
	}
	var issuers []*x509.Certificate
	for _, ch := range chains {
		if len(ch) > 1 {
			issuers = append(issuers, ch[1])
		}
	}
	err = v.crls.check(ctx, leaf, issuers)
	if errors.Is(err, ErrRevocationUnavailable) && v.cfg.FailOpen {
		v.cfg.Logger.Warn("workertls: accepting a worker without revocation status (FailOpen)",
			"id", id.String(), "serial", serialHex(leaf), "err", err)
		return nil
	}
	return err
}
