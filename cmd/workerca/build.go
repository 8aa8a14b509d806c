package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/retention"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/web"
)

// instance is a wired CA: everything serve, dev and token need.
type instance struct {
	cfg          *fileConfig
	dir          string
	store        *store.Store
	enroll       *enroll.Service
	root         []*x509.Certificate
	intermediate *x509.Certificate
	metrics      *web.Metrics
	rev          *revocation.Service
	registry     *registry.Registry
	pruner       *retention.Pruner
	// pruneInterval is the background pruning period; 0 means none.
	pruneInterval time.Duration
	// sourceLimit and trustedProxies configure the per-source limit.
	sourceLimit    ratelimit.Limit
	trustedProxies []netip.Prefix
	// renewalLimit is the per-worker renewal limit.
	renewalLimit ratelimit.Limit
}

// storeConfig turns the config's database section into store.Config;
// dsnOverride (from --db) replaces it when set.
func storeConfig(dir string, db databaseConfig, dsnOverride string) store.Config {
	if dsnOverride != "" {
		// --db replaces the ledger, not its tuning.
		tuned := db
		db = databaseConfigFromDSN(dsnOverride)
		db.MaxConns, db.MaxBatch, db.MaxBatches = tuned.MaxConns, tuned.MaxBatch, tuned.MaxBatches
	}
	if db.Driver == "" {
		db.Driver = store.DriverSQLite
	}
	if db.Driver == store.DriverSQLite {
		db.DSN = resolve(dir, db.DSN)
	}
	return store.Config{Driver: db.Driver, DSN: db.DSN, MaxConns: db.MaxConns, MaxBatch: db.MaxBatch, MaxBatches: db.MaxBatches}
}

// databaseConfigFromDSN infers the driver: postgres:// and postgresql://
// URLs are PostgreSQL, anything else is an SQLite file.
func databaseConfigFromDSN(dsn string) databaseConfig {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return databaseConfig{Driver: "postgres", DSN: dsn}
	}
	return databaseConfig{Driver: store.DriverSQLite, DSN: dsn}
}

// open wires config → store → ca → enroll.
// base is the public URL that certificates' CDP and AIA point to.
func open(ctx context.Context, cfg *fileConfig, dir, dsnOverride string, log *slog.Logger, base string) (*instance, error) {
	roots, err := ca.ReadCertificates(resolve(dir, cfg.RootCert))
	if err != nil {
		return nil, err
	}
	ints, err := ca.ReadCertificates(resolve(dir, cfg.IntermediateCert))
	if err != nil {
		return nil, err
	}
	var password []byte
	if cfg.IntermediateKeyPasswordFile != "" {
		if password, err = ca.ReadPasswordFile(resolve(dir, cfg.IntermediateKeyPasswordFile)); err != nil {
			return nil, err
		}
	}
	keyRef := resolve(dir, cfg.IntermediateKey)
	warnLooseKeyFile(log, keyRef)
	signer, err := ca.LoadSigner(ctx, keyRef, password)
	if err != nil {
		return nil, err
	}
	oid, err := cfg.enrollmentOID()
	if err != nil {
		return nil, err
	}
	rc, err := cfg.revocation()
	if err != nil {
		return nil, err
	}
	crlBase, ocspURLs, issuerURLs := cfg.publicURLs(base)
	iss, err := ca.New(ca.Config{
		Intermediate: ints[0], Signer: signer, EnrollmentOID: oid,
		CRLBaseURL: crlBase, CRLShards: rc.CRLShards, OCSPURLs: ocspURLs, IssuerURLs: issuerURLs,
	})
	if err != nil {
		return nil, err
	}
	if cfg.StatusKey == "" {
		return nil, errors.New("config: status_key is required (a PEM key file; workerca init writes status.key)")
	}
	statusRef := resolve(dir, cfg.StatusKey)
	warnLooseKeyFile(log, statusRef)
	statusKey, err := ca.LoadSigner(ctx, statusRef, nil)
	if err != nil {
		return nil, fmt.Errorf("config: status_key: %w", err)
	}
	pools, err := cfg.pools(dir)
	if err != nil {
		return nil, err
	}
	sourceLimit, proxies, err := cfg.sourceRateLimit()
	if err != nil {
		return nil, err
	}
	renewalLimit, err := cfg.renewalRateLimit()
	if err != nil {
		return nil, err
	}
	attestors, err := cfg.attestors(dir, time.Now)
	if err != nil {
		return nil, err
	}
	tpmCfg, err := cfg.tpm(dir)
	if err != nil {
		return nil, err
	}
	buffer, maxArtifact, pruneInterval, pruneBatch, err := cfg.retention()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, storeConfig(dir, cfg.Database, dsnOverride))
	if err != nil {
		return nil, err
	}
	metrics := web.NewMetrics()
	svc, err := enroll.New(enroll.Config{
		Issuer: iss, Ledger: st, TrustDomain: cfg.TrustDomain, Pools: pools,
		Logger: log, Observer: metrics, Attestors: attestors, RetentionBuffer: buffer, TPM: tpmCfg,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	rc.Ledger, rc.Issuer, rc.Signer, rc.CRLBaseURL = st, ints[0], signer, crlBase
	rc.IssueResponder, rc.StatusKey, rc.Logger = svc.IssueResponder, statusKey, log
	rev, err := revocation.New(rc)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("config: revocation: %w", err)
	}
	reg, err := registry.New(registry.Config{Ledger: st, ReceiptKey: statusKey, MaxLifetime: maxArtifact})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	pruner, err := retention.New(retention.Config{Store: st, Interval: pruneInterval, BatchSize: pruneBatch, Logger: log, Registerer: metrics.Registerer()})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	return &instance{cfg: cfg, dir: dir, store: st, enroll: svc, rev: rev, registry: reg, pruner: pruner, pruneInterval: pruneInterval,
		root: roots, intermediate: ints[0], metrics: metrics, sourceLimit: sourceLimit, trustedProxies: proxies, renewalLimit: renewalLimit}, nil
}

// warnLooseKeyFile warns when a key file others can read: init writes keys
// 0600, but a copy or a git checkout (certs-dev/) may not keep that.
func warnLooseKeyFile(log *slog.Logger, ref string) {
	if isURI(ref) {
		return
	}
	if fi, err := os.Stat(ref); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("key file is readable by group or others; chmod 600 it", "path", ref, "mode", fi.Mode().Perm().String())
	}
}

// serve runs the HTTP edge until ctx is done.
func (in *instance) serve(ctx context.Context, log *slog.Logger, httpsLn, httpLn net.Listener, ready func(https, http net.Addr)) error {
	srv, err := web.New(web.Config{
		Enroll: in.enroll, Revocation: in.rev, Registry: in.registry, Store: in.store, Roots: in.root, Intermediates: []*x509.Certificate{in.intermediate},
		Metrics: in.metrics, Logger: log, SourceRateLimit: &in.sourceLimit, TrustedProxies: in.trustedProxies,
		RenewalRateLimit: &in.renewalLimit,
	})
	if err != nil {
		return err
	}
	ips, err := in.cfg.serverIPs()
	if err != nil {
		return err
	}
	lifetime, err := parseDuration("server_tls.lifetime", in.cfg.ServerTLS.Lifetime)
	if err != nil {
		return err
	}
	if ready != nil {
		var ha net.Addr
		if httpLn != nil {
			ha = httpLn.Addr()
		}
		ready(httpsLn.Addr(), ha)
	}
	if in.pruneInterval > 0 {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); in.pruner.Run(pctx) }()
		defer func() { stop(); <-done }()
	}
	return srv.Run(ctx, web.RunConfig{
		HTTPS: httpsLn, HTTP: httpLn, DNSNames: in.cfg.ServerTLS.DNSNames, IPAddresses: ips, CertTTL: lifetime,
	})
}

// revocation is the checked revocation section (defaults filled); the
// caller adds the ledger, keys and URLs.
func (c *fileConfig) revocation() (revocation.Config, error) {
	r := c.Revocation
	out := revocation.Config{CRLShards: r.CRLShards}
	if out.CRLShards == 0 {
		out.CRLShards = defaultCRLShards
	}
	if out.CRLShards < 1 || out.CRLShards > ca.MaxCRLShards {
		return out, fmt.Errorf("config: revocation.crl_shards must be 1 to %d", ca.MaxCRLShards)
	}
	for _, d := range []struct {
		field, val string
		to         *time.Duration
	}{
		{"revocation.crl_validity", r.CRLValidity, &out.CRLValidity},
		{"revocation.crl_rebuild", r.CRLRebuild, &out.CRLRebuild},
		{"revocation.ocsp_validity", r.OCSPValidity, &out.OCSPValidity},
		{"revocation.responder_lifetime", r.ResponderLifetime, &out.ResponderTTL},
	} {
		v, err := parseDuration(d.field, d.val)
		if err != nil {
			return out, err
		}
		if v < 0 {
			return out, fmt.Errorf("config: %s must not be negative", d.field)
		}
		*d.to = v
	}
	return out, nil
}
