package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/web"
)

// Files of a workerca directory.
const (
	fileConfigName   = "workerca.json"
	fileRootCert     = "root.crt"
	fileRootKey      = "root.key"
	fileIntCert      = "intermediate.crt"
	fileIntKey       = "intermediate.key"
	fileIntCSR       = "intermediate.csr"
	fileStatusKey    = "status.key"
	fileAdminToken   = "admin.token"
	fileDatabase     = "workerca.db"
	fileRootPin      = "root.pin"
	defaultKeyType   = "P-256"
	defaultHTTPSAddr = "127.0.0.1:8443"
	defaultHTTPAddr  = "127.0.0.1:8080"
)

type initOptions struct {
	dir, trustDomain               string
	rootCert, rootKey, rootKeyPass string
	intKeyPass                     string
	offlineRoot                    bool
	db                             string
	keyType                        string
	httpsAddr, httpAddr, baseURL   string
	dnsNames                       []string
	ifMissing                      bool
}

func initCmd(e *env) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --dir D --trust-domain TD",
		Short: "Create a CA directory: hierarchy, configuration, ledger and a bootstrap admin API key",
		Long: `init creates a workerca directory. It never overwrites an existing file.

By default it makes a new root (self-signed, long-lived) and an online intermediate
(path length 0, keyCertSign + cRLSign) signed by it. Keys are written 0600.

  --root-cert F --root-key F   sign the new intermediate with an existing root instead
  --offline-root               make only the intermediate key and intermediate.csr; have your
                               offline root sign the CSR, then run 'workerca intermediate import'

It writes workerca.json (edit pools and listeners there), creates the ledger
(SQLite in the directory unless --db names a PostgreSQL URL) and a bootstrap
API key with scope admin in <dir>/admin.token (0600); only the path is printed.
With a new or given root it also writes root.pin (0644): the root's pin,
sha256:<hex of its SubjectPublicKeyInfo SHA-256>, as workerca-agent --ca-pin
and enroll.sh take it.

These set what workerca.json says, so that a container needs no editing:

  --https-addr A, --http-addr A   listen.https and listen.http
  --dns-name N                    server_tls.dns_names (repeatable; replaces localhost)
  --base-url U                    urls.base, the plain-HTTP URL in certificates' CDP and AIA

With --if-missing, init does nothing and exits 0 when <dir>/workerca.json
already exists, so a container may run it at every start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.dir == "" || o.trustDomain == "" {
				return usageError{"init needs --dir and --trust-domain"}
			}
			if o.ifMissing {
				cfgPath := filepath.Join(o.dir, fileConfigName)
				if _, err := os.Lstat(cfgPath); err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s exists: nothing to do (--if-missing)\n", cfgPath)
					return nil
				}
			}
			return runInit(cmd.Context(), e, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory to create the CA in (required)")
	f.StringVar(&o.trustDomain, "trust-domain", "", "SPIFFE trust domain, e.g. workers.example.com (required)")
	f.StringVar(&o.rootCert, "root-cert", "", "existing root certificate (PEM) to sign the intermediate with")
	f.StringVar(&o.rootKey, "root-key", "", "existing root key (PEM) for --root-cert")
	f.StringVar(&o.rootKeyPass, "root-key-password-file", "", "file holding the passphrase of --root-key, or of the new root key")
	f.StringVar(&o.intKeyPass, "intermediate-key-password-file", "", "encrypt the intermediate key with the passphrase in this file")
	f.BoolVar(&o.offlineRoot, "offline-root", false, "write intermediate.csr for an offline root instead of signing")
	f.StringVar(&o.db, "db", "", "ledger: a PostgreSQL URL (postgres://...) or an SQLite file (default <dir>/workerca.db)")
	f.StringVar(&o.keyType, "key-type", defaultKeyType, "key type of new CA keys: P-256, P-384, Ed25519 or RSA")
	f.StringVar(&o.httpsAddr, "https-addr", defaultHTTPSAddr, "listen.https: the HTTPS listen address (all routes)")
	f.StringVar(&o.httpAddr, "http-addr", defaultHTTPAddr, "listen.http: the plain HTTP listen address (public read-only routes); empty for none")
	f.StringArrayVar(&o.dnsNames, "dns-name", nil, "server_tls.dns_names: a DNS name of the HTTPS certificate (repeatable; default localhost)")
	f.StringVar(&o.baseURL, "base-url", "", "urls.base: the CA's public plain-HTTP URL for CRLs, OCSP and the issuer (default http://<listen.http>)")
	f.BoolVar(&o.ifMissing, "if-missing", false, "exit 0 without doing anything when <dir>/workerca.json exists")
	return cmd
}

// defaultConfig is the configuration init writes.
func defaultConfig(trustDomain string, o initOptions) *fileConfig {
	cfg := &fileConfig{
		TrustDomain:      trustDomain,
		RootCert:         fileRootCert,
		IntermediateCert: fileIntCert,
		IntermediateKey:  fileIntKey,
		StatusKey:        fileStatusKey,
		Database:         databaseConfig{Driver: store.DriverSQLite, DSN: fileDatabase},
		Listen:           listenConfig{HTTPS: o.httpsAddr, HTTP: o.httpAddr},
		ServerTLS:        serverTLSConfig{DNSNames: []string{"localhost"}, IPAddresses: []string{"127.0.0.1"}, Lifetime: "24h"},
		Pools:            []poolConfig{{Name: "default", TTL: "24h", Methods: []string{"token"}}},
	}
	if o.db != "" {
		cfg.Database = databaseConfigFromDSN(o.db)
	}
	if len(o.dnsNames) > 0 {
		cfg.ServerTLS.DNSNames = o.dnsNames
	}
	cfg.URLs.Base = o.baseURL
	if o.intKeyPass != "" {
		abs, _ := filepath.Abs(o.intKeyPass)
		cfg.IntermediateKeyPasswordFile = abs
	}
	return cfg
}

func runInit(ctx context.Context, e *env, o initOptions, out io.Writer) (err error) {
	kt, err := ca.ParseKeyType(o.keyType)
	if err != nil {
		return usageError{err.Error()}
	}
	if (o.rootCert == "") != (o.rootKey == "") {
		return usageError{"--root-cert and --root-key go together"}
	}
	if o.offlineRoot && o.rootCert != "" {
		return usageError{"--offline-root and --root-cert exclude each other"}
	}
	if err := checkInitListen(o); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{fileConfigName, fileIntKey, fileIntCert} {
		if _, err := os.Stat(filepath.Join(o.dir, f)); err == nil {
			return fmt.Errorf("%s already exists: init never overwrites a CA", filepath.Join(o.dir, f))
		}
	}
	if _, err := spiffeid.TrustDomainFromString(o.trustDomain); err != nil {
		return usageError{fmt.Sprintf("--trust-domain %q: %v", o.trustDomain, err)}
	}
	// A failed init removes the files it wrote, so that it can be run
	// again: init never overwrites, so none of them existed before.
	var absent []string
	for _, f := range []string{fileConfigName, fileRootCert, fileRootKey, fileRootPin, fileIntCert, fileIntKey, fileIntCSR, fileStatusKey, fileAdminToken} {
		if _, err := os.Lstat(filepath.Join(o.dir, f)); errors.Is(err, os.ErrNotExist) {
			absent = append(absent, filepath.Join(o.dir, f))
		}
	}
	defer func() {
		if err != nil {
			for _, f := range absent {
				_ = os.Remove(f)
			}
		}
	}()
	cfg := defaultConfig(o.trustDomain, o)
	now := time.Now()
	intPass, err := optionalPassword(o.intKeyPass)
	if err != nil {
		return err
	}
	intKey, err := ca.GenerateKey(kt)
	if err != nil {
		return err
	}
	path := func(f string) string { return filepath.Join(o.dir, f) }
	if err := ca.WriteKey(path(fileIntKey), intKey, intPass); err != nil {
		return err
	}
	// The status key signs GET /v1/status answers; verifiers fetch its
	// public half from /v1/status/keys. It stays across restarts.
	statusKey, err := ca.GenerateKey(ca.KeyP256)
	if err != nil {
		return err
	}
	if err := ca.WriteKey(path(fileStatusKey), statusKey, nil); err != nil {
		return err
	}
	intCN := o.trustDomain + " Intermediate CA"
	switch {
	case o.offlineRoot:
		der, err := ca.NewIntermediateCSR(intKey, intCN)
		if err != nil {
			return err
		}
		if err := ca.WriteCSR(path(fileIntCSR), der); err != nil {
			return err
		}
	default:
		root, rootKey, err := initRoot(ctx, o, kt, now)
		if err != nil {
			return err
		}
		inter, err := ca.NewIntermediate(ca.IntermediateRequest{CommonName: intCN, PublicKey: intKey.Public(), Root: root, RootKey: rootKey, Now: now})
		if err != nil {
			return err
		}
		if err := ca.WriteCertificates(path(fileRootCert), root); err != nil {
			return err
		}
		if err := ca.WriteCertificates(path(fileIntCert), inter); err != nil {
			return err
		}
		if err := writeRootPin(path(fileRootPin), path(fileRootCert)); err != nil {
			return err
		}
		if o.rootCert == "" {
			rootPass, err := optionalPassword(o.rootKeyPass)
			if err != nil {
				return err
			}
			if err := ca.WriteKey(path(fileRootKey), rootKey, rootPass); err != nil {
				return err
			}
		}
	}
	if err := writeConfig(path(fileConfigName), cfg); err != nil {
		return err
	}
	tokenPath, err := ensureAdminKey(ctx, storeConfig(o.dir, cfg.Database, ""), o.dir, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created %s\n", path(fileConfigName))
	if o.offlineRoot {
		fmt.Fprintf(out, "intermediate CSR: %s\nsign it with your offline root (CA, pathlen 0, keyCertSign+cRLSign), then run:\n  workerca intermediate import --dir %s --cert signed.crt --root-cert root.crt\n", path(fileIntCSR), o.dir)
	} else if o.rootCert == "" {
		fmt.Fprintf(out, "root key: %s (move it offline; serve does not need it)\n", path(fileRootKey))
	}
	fmt.Fprintf(out, "admin API key: %s\n", tokenPath)
	return nil
}

// checkInitListen checks the listener addresses and base URL init is to
// write, so that a mistyped flag fails here and not at the first serve.
func checkInitListen(o initOptions) error {
	if _, _, err := net.SplitHostPort(o.httpsAddr); err != nil {
		return usageError{fmt.Sprintf("--https-addr %q: want host:port", o.httpsAddr)}
	}
	if o.httpAddr != "" {
		if _, _, err := net.SplitHostPort(o.httpAddr); err != nil {
			return usageError{fmt.Sprintf("--http-addr %q: want host:port, or empty for none", o.httpAddr)}
		}
	}
	for _, n := range o.dnsNames {
		if n == "" || strings.ContainsAny(n, " /:") {
			return usageError{fmt.Sprintf("--dns-name %q: want a DNS name", n)}
		}
	}
	if o.baseURL != "" {
		u, err := url.Parse(o.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Sprintf("--base-url %q: want an absolute http:// or https:// URL", o.baseURL)}
		}
	}
	return nil
}

// writeRootPin writes the pin of the root certificate at rootPath to path
// (0644), refusing to overwrite.
func writeRootPin(path, rootPath string) error {
	pin, err := rootPin(rootPath)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(pin + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// initRoot loads the given root or makes a new one.
func initRoot(ctx context.Context, o initOptions, kt ca.KeyType, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	if o.rootCert != "" {
		certs, err := ca.ReadCertificates(o.rootCert)
		if err != nil {
			return nil, nil, err
		}
		pass, err := optionalPassword(o.rootKeyPass)
		if err != nil {
			return nil, nil, err
		}
		key, err := ca.LoadSigner(ctx, o.rootKey, pass)
		if err != nil {
			return nil, nil, err
		}
		return certs[0], key, nil
	}
	key, err := ca.GenerateKey(kt)
	if err != nil {
		return nil, nil, err
	}
	root, err := ca.NewRoot(ca.RootRequest{CommonName: o.trustDomain + " Root CA", Key: key, Now: now})
	return root, key, err
}

func optionalPassword(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	return ca.ReadPasswordFile(file)
}

// ensureAdminKey creates the bootstrap admin key when the ledger has no
// API key at all, and writes it to <dir>/admin.token (0600). It returns the
// path of the token file.
func ensureAdminKey(ctx context.Context, sc store.Config, dir string, now time.Time) (string, error) {
	st, err := store.Open(ctx, sc)
	if err != nil {
		return "", err
	}
	defer st.Close()
	path := filepath.Join(dir, fileAdminToken)
	n, err := st.CountAPIKeys(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("the ledger has API keys but %s is missing; use an existing admin key", path)
		}
		return path, nil
	}
	k, err := web.CreateAPIKey(ctx, st, web.APIKeyRequest{Name: "bootstrap admin", Scopes: []web.Scope{web.ScopeAdmin}, CreatedBy: "cli", Now: now})
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(k.Key+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
