package main

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/awsiid"
	"github.com/workerca/workerca/enroll/azure"
	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/internal/ratelimit"
	"github.com/workerca/workerca/retention"
	"github.com/workerca/workerca/web"
)

// fileConfig is the JSON configuration file, decoded strictly (unknown
// keys are errors). Paths are relative to the file's directory.
type fileConfig struct {
	// TrustDomain is the SPIFFE trust domain of every worker ID.
	TrustDomain string `json:"trust_domain"`
	// RootCert is the trust anchor served at /v1/bundle (PEM).
	RootCert string `json:"root_cert"`
	// IntermediateCert is the online intermediate (PEM).
	IntermediateCert string `json:"intermediate_cert"`
	// IntermediateKey is a PEM key file or a go.step.sm/crypto/kms URI.
	IntermediateKey string `json:"intermediate_key"`
	// IntermediateKeyPasswordFile decrypts an encrypted PEM key.
	IntermediateKeyPasswordFile string `json:"intermediate_key_password_file,omitempty"`
	// Database is the ledger.
	Database databaseConfig `json:"database"`
	// Listen holds the listener addresses.
	Listen listenConfig `json:"listen"`
	// ServerTLS names the HTTPS listener's certificate.
	ServerTLS serverTLSConfig `json:"server_tls"`
	// URLs go into every worker certificate (CDP, AIA).
	URLs urlsConfig `json:"urls"`
	// StatusKey is the PEM key file that signs GET /v1/status answers.
	StatusKey string `json:"status_key"`
	// Revocation tunes CRLs and OCSP.
	Revocation revocationConfig `json:"revocation"`
	// Retention tunes how long history is kept, and pruning.
	Retention retentionConfig `json:"retention"`
	// EnrollmentOID overrides the enrollment extension's OID (dotted).
	EnrollmentOID string `json:"enrollment_oid,omitempty"`
	// PublicURL is the CA's base URL as workers reach it
	// ("https://ca.example.com"); cloud evidence is bound to it.
	PublicURL string `json:"public_url,omitempty"`
	// Attestation configures the cloud attestors.
	Attestation attestationConfig `json:"attestation"`
	// RateLimits caps enrollment requests per source address.
	RateLimits rateLimitsConfig `json:"rate_limits"`
	// Pools are the worker pools.
	Pools []poolConfig `json:"pools"`
}

// rateLimitsConfig is the per-source limit of the enrollment routes and
// who may name the source.
type rateLimitsConfig struct {
	// PerSource is each source address's bucket (IPv6: each /64) on
	// POST /v1/enroll/challenge, /v1/enroll and /v1/enroll/token; absent
	// means web.DefaultSourceRateLimit.
	PerSource *limitConfig `json:"per_source,omitempty"`
	// PerWorkerRenewal is each worker's bucket on POST /v1/renew; absent
	// means web.DefaultRenewalRateLimit.
	PerWorkerRenewal *limitConfig `json:"per_worker_renewal,omitempty"`
	// TrustedProxies are addresses or CIDR networks of reverse proxies
	// whose X-Forwarded-For header names the client.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`
}

// limitConfig is a token bucket: per_minute tokens a minute up to burst,
// or unlimited.
type limitConfig struct {
	PerMinute float64 `json:"per_minute,omitempty"`
	Burst     int     `json:"burst,omitempty"`
	Unlimited bool    `json:"unlimited,omitempty"`
}

// limit turns lc into a checked limit; nil lc is def.
func (lc *limitConfig) limit(field string, def ratelimit.Limit) (ratelimit.Limit, error) {
	switch {
	case lc == nil:
		return def, nil
	case lc.Unlimited && (lc.PerMinute != 0 || lc.Burst != 0):
		return ratelimit.Limit{}, fmt.Errorf("config: %s: unlimited excludes per_minute and burst", field)
	case lc.Unlimited:
		return ratelimit.Limit{}, nil
	case lc.PerMinute <= 0 || lc.Burst < 1:
		return ratelimit.Limit{}, fmt.Errorf(`config: %s: needs per_minute > 0 and burst >= 1 (or "unlimited": true)`, field)
	}
	l := ratelimit.Limit{PerMinute: lc.PerMinute, Burst: lc.Burst}
	if err := l.Check(); err != nil {
		return ratelimit.Limit{}, fmt.Errorf("config: %s: %w", field, err)
	}
	return l, nil
}

// renewalRateLimit is the checked per-worker renewal limit.
func (c *fileConfig) renewalRateLimit() (ratelimit.Limit, error) {
	return c.RateLimits.PerWorkerRenewal.limit("rate_limits.per_worker_renewal", web.DefaultRenewalRateLimit)
}

// sourceRateLimit is the checked per-source limit and trusted proxies.
func (c *fileConfig) sourceRateLimit() (ratelimit.Limit, []netip.Prefix, error) {
	l, err := c.RateLimits.PerSource.limit("rate_limits.per_source", web.DefaultSourceRateLimit)
	if err != nil {
		return l, nil, err
	}
	var proxies []netip.Prefix
	for _, s := range c.RateLimits.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return l, nil, fmt.Errorf("config: rate_limits.trusted_proxies: %q is not an address or CIDR network", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	return l, proxies, nil
}

type attestationConfig struct {
	AWS   *awsConfig   `json:"aws,omitempty"`
	GCP   *gcpConfig   `json:"gcp,omitempty"`
	Azure *azureConfig `json:"azure,omitempty"`
	TPM   *tpmConfig   `json:"tpm,omitempty"`
}

// tpmConfig is where TPM manufacturer roots come from. workerca ships
// none: docs/enrollment.md says where to get them.
type tpmConfig struct {
	// ManufacturerRoots are PEM or DER files, or directories of them
	// (*.pem, *.crt, *.cer, *.der), relative to the config.
	ManufacturerRoots []string `json:"manufacturer_roots,omitempty"`
	// ManufacturerIntermediates are the manufacturers' issuing CAs, in
	// the same forms.
	ManufacturerIntermediates []string `json:"manufacturer_intermediates,omitempty"`
}

// tpmPoolConfig is one pool's tpm policy.
type tpmPoolConfig struct {
	// EK is "any" (default), "certificate" or "registered".
	EK string `json:"ek,omitempty"`
}

// azureConfig adds trust for Azure attested documents beyond the shipped
// Microsoft roots and issuing CAs.
type azureConfig struct {
	// RootsFile replaces the shipped roots (PEM bundle).
	RootsFile string `json:"roots_file,omitempty"`
	// IntermediatesFile adds issuing CAs (PEM bundle).
	IntermediatesFile string `json:"intermediates_file,omitempty"`
}

// awsConfig adds AWS signing certificates to the shipped ones.
type awsConfig struct {
	// CertificatesFile holds extra AWS certificates (PEM), trusted for
	// every region and form.
	CertificatesFile string `json:"certificates_file,omitempty"`
}

// awsPoolConfig is one pool's aws-iid policy.
type awsPoolConfig struct {
	Accounts []string `json:"accounts"`
	Regions  []string `json:"regions,omitempty"`
	MaxAge   string   `json:"max_age,omitempty"`
	Reattest string   `json:"reattest,omitempty"`
}

// azurePoolConfig is one pool's azure policy.
type azurePoolConfig struct {
	Subscriptions []string `json:"subscriptions,omitempty"`
}

// gcpConfig is where Google's token-signing keys come from.
type gcpConfig struct {
	// JWKSURL overrides Google's key set URL.
	JWKSURL string `json:"jwks_url,omitempty"`
	// JWKSFile pins the key set from a file (air-gapped sites).
	JWKSFile string `json:"jwks_file,omitempty"`
}

// gcpPoolConfig is one pool's gcp-iit policy.
type gcpPoolConfig struct {
	Projects       []string `json:"projects,omitempty"`
	MaxInstanceAge string   `json:"max_instance_age,omitempty"`
}

type databaseConfig struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `json:"driver"`
	// DSN is the SQLite file (relative to the config) or a PostgreSQL DSN.
	DSN string `json:"dsn"`
	// MaxConns caps the PostgreSQL connections, all kept open (0:
	// store.DefaultMaxConns). MaxBatch is the most issuances one ledger
	// transaction holds (0: store.DefaultMaxBatch; 1 turns group commit
	// off); MaxBatches how many such transactions run at once on
	// PostgreSQL (0: store.DefaultMaxBatchesPostgres).
	MaxConns   int `json:"max_conns,omitempty"`
	MaxBatch   int `json:"max_batch,omitempty"`
	MaxBatches int `json:"max_batches,omitempty"`
}

type listenConfig struct {
	HTTPS string `json:"https"`
	HTTP  string `json:"http,omitempty"`
}

type serverTLSConfig struct {
	DNSNames    []string `json:"dns_names"`
	IPAddresses []string `json:"ip_addresses"`
	Lifetime    string   `json:"lifetime,omitempty"`
}

// urlsConfig says where relying parties fetch revocation status.
type urlsConfig struct {
	// Base is the CA's public plain-HTTP URL ("http://ca.example.com"):
	// each certificate's CDP is <base>/crl/<shard>.crl, its OCSP URL
	// <base>/ocsp and its caIssuers URL <base>/v1/intermediate.crt.
	// Empty means http://<listen.http> (https://<listen.https> without a
	// plain listener).
	Base string `json:"base,omitempty"`
	// OCSP and Issuer replace the URLs derived from Base.
	OCSP   []string `json:"ocsp,omitempty"`
	Issuer []string `json:"issuer,omitempty"`
}

// revocationConfig tunes CRLs and OCSP; every field has a default.
type revocationConfig struct {
	// CRLShards spreads the serials over this many CRLs (default 16).
	// Changing it later strands the CDPs of certificates already issued:
	// pick it once.
	CRLShards int `json:"crl_shards,omitempty"`
	// CRLValidity is nextUpdate - thisUpdate (default "24h").
	CRLValidity string `json:"crl_validity,omitempty"`
	// CRLRebuild is how often each CRL is rebuilt (default "1h"); a
	// revocation rebuilds its shard at once.
	CRLRebuild string `json:"crl_rebuild,omitempty"`
	// OCSPValidity is an OCSP answer's validity (default "4h").
	OCSPValidity string `json:"ocsp_validity,omitempty"`
	// ResponderLifetime is the OCSP responder certificate's (default
	// "72h"), renewed after two thirds.
	ResponderLifetime string `json:"responder_lifetime,omitempty"`
}

// retentionConfig tunes history retention and pruning; every field has a
// default.
type retentionConfig struct {
	// SafetyBuffer keeps a certificate's ledger row this long past its
	// notAfter (default "72h"); an artifact it signed keeps it longer.
	SafetyBuffer string `json:"safety_buffer,omitempty"`
	// MaxArtifactLifetime caps how far ahead a registration's expires_at
	// may be (default "43800h", five years).
	MaxArtifactLifetime string `json:"max_artifact_lifetime,omitempty"`
	// PruneInterval is the time between background pruning passes
	// (default "10m"); "off" disables them (run workerca prune instead).
	PruneInterval string `json:"prune_interval,omitempty"`
	// PruneBatch is the rows deleted per statement (default 500).
	PruneBatch int `json:"prune_batch,omitempty"`
}

// retention is the checked retention section, defaults filled; a zero
// interval means no background pruning.
func (c *fileConfig) retention() (buffer, maxLifetime, interval time.Duration, batch int, err error) {
	r := c.Retention
	if buffer, err = parseDuration("retention.safety_buffer", r.SafetyBuffer); err != nil {
		return
	}
	if maxLifetime, err = parseDuration("retention.max_artifact_lifetime", r.MaxArtifactLifetime); err != nil {
		return
	}
	if r.PruneInterval != "off" {
		if interval, err = parseDuration("retention.prune_interval", r.PruneInterval); err != nil {
			return
		}
		if interval == 0 {
			interval = retention.DefaultInterval
		}
	}
	switch {
	case buffer < 0 || maxLifetime < 0 || interval < 0:
		err = errors.New("config: retention durations must not be negative")
	case r.PruneInterval != "off" && interval < time.Second:
		err = errors.New("config: retention.prune_interval must be at least 1s, or \"off\"")
	case r.PruneBatch < 0 || r.PruneBatch > 100000:
		err = errors.New("config: retention.prune_batch must be 0 (default 500) to 100000")
	}
	return buffer, maxLifetime, interval, r.PruneBatch, err
}

// defaultCRLShards is the CRL shard count of a config that names none.
const defaultCRLShards = 16

// publicBase is urls.base, else the plain HTTP listener's URL, else the
// HTTPS listener's.
func (c *fileConfig) publicBase(httpsAddr, httpAddr string) string {
	switch {
	case c.URLs.Base != "":
		return c.URLs.Base
	case httpAddr != "":
		return "http://" + httpAddr
	}
	return "https://" + httpsAddr
}

// publicURLs are the CDP base and the AIA URLs for base.
func (c *fileConfig) publicURLs(base string) (crl string, ocsp, issuer []string) {
	base = strings.TrimSuffix(base, "/")
	ocsp, issuer = c.URLs.OCSP, c.URLs.Issuer
	if len(ocsp) == 0 {
		ocsp = []string{base + "/ocsp"}
	}
	if len(issuer) == 0 {
		issuer = []string{base + "/v1/intermediate.crt"}
	}
	return base, ocsp, issuer
}

type poolConfig struct {
	Name             string   `json:"name"`
	TTL              string   `json:"ttl,omitempty"`
	KeyTypes         []string `json:"key_types,omitempty"`
	MaxActiveWorkers int      `json:"max_active_workers,omitempty"`
	MaxRenewalChain  string   `json:"max_renewal_chain,omitempty"`
	Methods          []string `json:"methods"`
	// GCP is the pool's gcp-iit policy; required when methods has gcp-iit.
	GCP *gcpPoolConfig `json:"gcp,omitempty"`
	// AWS is the pool's aws-iid policy; required when methods has aws-iid.
	AWS *awsPoolConfig `json:"aws,omitempty"`
	// Azure is the pool's azure policy; required when methods has azure.
	Azure *azurePoolConfig `json:"azure,omitempty"`
	// TPM is the pool's tpm policy; optional (default: ek "any").
	TPM          *tpmPoolConfig `json:"tpm,omitempty"`
	TemplateFile string         `json:"template_file,omitempty"`
	// RateLimit caps the pool's enrollments; absent means
	// enroll.DefaultPoolRateLimit.
	RateLimit *limitConfig `json:"rate_limit,omitempty"`
}

// loadConfig reads and strictly decodes a configuration file.
func loadConfig(path string) (*fileConfig, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	var cfg fileConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, "", fmt.Errorf("config %s: %w", path, err)
	}
	if dec.More() {
		return nil, "", fmt.Errorf("config %s: data after the JSON object", path)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, "", err
	}
	return &cfg, dir, nil
}

// writeConfig writes cfg as indented JSON, refusing to overwrite.
func writeConfig(path string, cfg *fileConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// resolve makes a config-relative path absolute; kms URIs pass through.
func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || isURI(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func isURI(p string) bool {
	i := strings.Index(p, ":")
	return i > 1 && !strings.ContainsAny(p[:i], `/\.`)
}

func (c *fileConfig) pools(dir string) ([]enroll.Pool, error) {
	if len(c.Pools) == 0 {
		return nil, errors.New("config: at least one pool is required")
	}
	var out []enroll.Pool
	for _, pc := range c.Pools {
		ttl, err := parseDuration("pools."+pc.Name+".ttl", pc.TTL)
		if err != nil {
			return nil, err
		}
		var kts []ca.KeyType
		for _, k := range pc.KeyTypes {
			kt, err := ca.ParseKeyType(k)
			if err != nil {
				return nil, fmt.Errorf("config: pool %s: %w", pc.Name, err)
			}
			kts = append(kts, kt)
		}
		var tmpl string
		if pc.TemplateFile != "" {
			b, err := os.ReadFile(resolve(dir, pc.TemplateFile))
			if err != nil {
				return nil, fmt.Errorf("config: pool %s: template: %w", pc.Name, err)
			}
			tmpl = string(b)
		}
		prof, err := ca.NewProfile(ca.ProfileConfig{Name: pc.Name, TTL: ttl, KeyTypes: kts, Template: tmpl})
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		chain, err := parseDuration("pool "+pc.Name+": max_renewal_chain", pc.MaxRenewalChain)
		if err != nil {
			return nil, err
		}
		limit, err := pc.RateLimit.limit("pool "+pc.Name+": rate_limit", enroll.DefaultPoolRateLimit)
		if err != nil {
			return nil, err
		}
		out = append(out, enroll.Pool{Profile: prof, MaxActiveWorkers: pc.MaxActiveWorkers, Methods: pc.Methods, MaxRenewalChain: chain, RateLimit: limit})
	}
	return out, nil
}

func (c *fileConfig) enrollmentOID() (asn1.ObjectIdentifier, error) {
	if c.EnrollmentOID == "" {
		return nil, nil
	}
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(c.EnrollmentOID, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("config: enrollment_oid %q is not a dotted OID", c.EnrollmentOID)
		}
		oid = append(oid, n)
	}
	if len(oid) < 3 {
		return nil, fmt.Errorf("config: enrollment_oid %q is too short", c.EnrollmentOID)
	}
	return oid, nil
}

func (c *fileConfig) serverIPs() ([]net.IP, error) {
	var ips []net.IP
	for _, s := range c.ServerTLS.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("config: server_tls.ip_addresses: %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("config: %s: %q is not a duration like \"24h\"", field, s)
	}
	return d, nil
}

// policyFor says whether the pool uses method, and refuses a method
// without its policy object (key) or a policy without its method.
func (pc poolConfig) policyFor(method, key string, hasPolicy bool, fields string) (bool, error) {
	uses := slices.Contains(pc.Methods, method)
	switch {
	case uses && !hasPolicy:
		return false, fmt.Errorf("config: pool %s: method %s needs its %q policy (%s)", pc.Name, method, key, fields)
	case !uses && hasPolicy:
		return false, fmt.Errorf("config: pool %s: %q policy given but methods lacks %s", pc.Name, key, method)
	}
	return uses, nil
}

// tpm builds method tpm's configuration, or nil when no pool lists it.
func (c *fileConfig) tpm(dir string) (*enroll.TPMConfig, error) {
	out := &enroll.TPMConfig{}
	for _, pc := range c.Pools {
		uses := slices.Contains(pc.Methods, enroll.MethodTPM)
		switch {
		case !uses && pc.TPM != nil:
			return nil, fmt.Errorf("config: pool %s: \"tpm\" policy given but methods lacks %s", pc.Name, enroll.MethodTPM)
		case uses && pc.TPM != nil:
			out.Pools = append(out.Pools, enroll.TPMPool{Pool: pc.Name, EK: pc.TPM.EK})
		case uses:
			out.Pools = append(out.Pools, enroll.TPMPool{Pool: pc.Name})
		}
	}
	tc := c.Attestation.TPM
	if len(out.Pools) == 0 {
		if tc != nil {
			return nil, fmt.Errorf("config: attestation.tpm is set but no pool lists method %s", enroll.MethodTPM)
		}
		return nil, nil
	}
	if tc != nil && len(tc.ManufacturerRoots) > 0 {
		var roots, ints []string
		for _, f := range tc.ManufacturerRoots {
			roots = append(roots, resolve(dir, f))
		}
		for _, f := range tc.ManufacturerIntermediates {
			ints = append(ints, resolve(dir, f))
		}
		r, err := tpmattest.LoadEKRoots(roots, ints)
		if err != nil {
			return nil, fmt.Errorf("config: attestation.tpm: %w", err)
		}
		out.Roots = r
	} else if tc != nil && len(tc.ManufacturerIntermediates) > 0 {
		return nil, errors.New("config: attestation.tpm: manufacturer_intermediates without manufacturer_roots")
	}
	return out, nil
}

// attestors builds the cloud attestors the pools ask for.
func (c *fileConfig) attestors(dir string, clock func() time.Time) ([]enroll.Attestor, error) {
	var out []enroll.Attestor
	var (
		awsPools   []enroll.AWSPool
		gcpPools   []enroll.GCPPool
		azurePools []enroll.AzurePool
	)
	for _, pc := range c.Pools {
		use, err := pc.policyFor(enroll.MethodAWS, "aws", pc.AWS != nil, "accounts, regions, max_age, reattest")
		if err != nil {
			return nil, err
		}
		if use {
			age, err := parseDuration("pool "+pc.Name+": aws.max_age", pc.AWS.MaxAge)
			if err != nil {
				return nil, err
			}
			awsPools = append(awsPools, enroll.AWSPool{Pool: pc.Name, Reattest: pc.AWS.Reattest,
				Policy: awsiid.Policy{Accounts: pc.AWS.Accounts, Regions: pc.AWS.Regions, MaxAge: age}})
		}
		if use, err = pc.policyFor(enroll.MethodGCP, "gcp", pc.GCP != nil, "projects, max_instance_age"); err != nil {
			return nil, err
		}
		if use {
			age, err := parseDuration("pool "+pc.Name+": gcp.max_instance_age", pc.GCP.MaxInstanceAge)
			if err != nil {
				return nil, err
			}
			gcpPools = append(gcpPools, enroll.GCPPool{Pool: pc.Name, Projects: pc.GCP.Projects, MaxInstanceAge: age})
		}
		if use, err = pc.policyFor(enroll.MethodAzure, "azure", pc.Azure != nil, "subscriptions"); err != nil {
			return nil, err
		}
		if use {
			azurePools = append(azurePools, enroll.AzurePool{Pool: pc.Name, Subscriptions: pc.Azure.Subscriptions})
		}
	}
	if len(awsPools) > 0 {
		ac := awsiid.Config{Clock: clock}
		if c.Attestation.AWS != nil && c.Attestation.AWS.CertificatesFile != "" {
			certs, err := ca.ReadCertificates(resolve(dir, c.Attestation.AWS.CertificatesFile))
			if err != nil {
				return nil, fmt.Errorf("config: attestation.aws.certificates_file: %w", err)
			}
			ac.Certificates = certs
		}
		v, err := awsiid.New(ac)
		if err != nil {
			return nil, fmt.Errorf("config: attestation.aws: %w", err)
		}
		a, err := enroll.NewAWSAttestor(enroll.AWSConfig{Verifier: v, Pools: awsPools})
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out = append(out, a)
	}
	if len(azurePools) > 0 {
		ac := azure.Config{Clock: clock}
		if c.Attestation.Azure != nil {
			var err error
			if f := c.Attestation.Azure.RootsFile; f != "" {
				if ac.Roots, err = ca.ReadCertificates(resolve(dir, f)); err != nil {
					return nil, fmt.Errorf("config: attestation.azure.roots_file: %w", err)
				}
			}
			if f := c.Attestation.Azure.IntermediatesFile; f != "" {
				if ac.Intermediates, err = ca.ReadCertificates(resolve(dir, f)); err != nil {
					return nil, fmt.Errorf("config: attestation.azure.intermediates_file: %w", err)
				}
			}
		}
		v, err := azure.New(ac)
		if err != nil {
			return nil, fmt.Errorf("config: attestation.azure: %w", err)
		}
		a, err := enroll.NewAzureAttestor(enroll.AzureConfig{Verifier: v, Pools: azurePools})
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out = append(out, a)
	}
	if len(gcpPools) > 0 {
		gc := gcpConfig{}
		if c.Attestation.GCP != nil {
			gc = *c.Attestation.GCP
		}
		file := ""
		if gc.JWKSFile != "" {
			file = resolve(dir, gc.JWKSFile)
		}
		v, err := gcpiit.New(gcpiit.Config{JWKSURL: gc.JWKSURL, JWKSFile: file, Clock: clock})
		if err != nil {
			return nil, fmt.Errorf("config: attestation.gcp: %w", err)
		}
		a, err := enroll.NewGCPAttestor(enroll.GCPConfig{Verifier: v, PublicURL: c.PublicURL, Pools: gcpPools})
		if err != nil {
			return nil, fmt.Errorf("config: %w (set public_url)", err)
		}
		out = append(out, a)
	}
	return out, nil
}
