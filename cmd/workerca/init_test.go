package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/store"
)

const testTrustDomain = "workers.example.com"

// TestInitCreatesCA checks everything init writes, and that a second init
// in the same directory is refused without touching a file.
func TestInitCreatesCA(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	stdout, stderr := mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain)
	p := func(f string) string { return filepath.Join(dir, f) }

	requireMode(t, dir, 0o700)
	for f, mode := range map[string]os.FileMode{
		fileRootKey: 0o600, fileIntKey: 0o600, fileAdminToken: 0o600, fileConfigName: 0o600,
		fileRootCert: 0o644, fileIntCert: 0o644,
	} {
		requireMode(t, p(f), mode)
	}
	if _, err := os.Stat(p(fileIntCSR)); err == nil {
		t.Errorf("%s written without --offline-root", fileIntCSR)
	}

	// The hierarchy: a self-signed root and an intermediate with path
	// length 0 under it, each with the key beside it.
	root := readCerts(t, p(fileRootCert))[0]
	inter := readCerts(t, p(fileIntCert))[0]
	if err := root.CheckSignatureFrom(root); err != nil || !root.IsCA {
		t.Errorf("root is not a self-signed CA: IsCA=%v, %v", root.IsCA, err)
	}
	if err := ca.CheckIntermediate(inter, root, inter.PublicKey, time.Now()); err != nil {
		t.Errorf("intermediate: %v", err)
	}
	if inter.KeyUsage&x509.KeyUsageCRLSign == 0 {
		t.Errorf("intermediate lacks cRLSign")
	}
	if !strings.Contains(inter.Subject.CommonName, testTrustDomain) || !strings.Contains(root.Subject.CommonName, testTrustDomain) {
		t.Errorf("names do not mention the trust domain: root %q, intermediate %q", root.Subject.CommonName, inter.Subject.CommonName)
	}
	requireKeyPair(t, p(fileRootKey), nil, root)
	requireKeyPair(t, p(fileIntKey), nil, inter)

	cfg, _, err := loadConfig(p(fileConfigName))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TrustDomain != testTrustDomain || cfg.Database.Driver != store.DriverSQLite || cfg.Database.DSN != fileDatabase ||
		len(cfg.Pools) != 1 || cfg.Pools[0].Name != "default" || !slices.Equal(cfg.Pools[0].Methods, []string{"token"}) {
		t.Errorf("config = %+v", cfg)
	}

	// The bootstrap admin key is in the ledger, and only its path is printed.
	admin := requireAdminKey(t, dir, store.Config{Driver: store.DriverSQLite, DSN: p(fileDatabase)})
	if !strings.Contains(stdout, p(fileAdminToken)) {
		t.Errorf("init output does not name %s:\n%s", p(fileAdminToken), stdout)
	}
	if strings.Contains(stdout+stderr, admin) {
		t.Errorf("init printed the admin key")
	}

	// A second init changes nothing.
	before := snapshot(t, dir)
	for _, args := range [][]string{
		{"init", "--dir", dir, "--trust-domain", testTrustDomain},
		{"init", "--dir", dir, "--trust-domain", "other.example.com", "--offline-root"},
	} {
		code, out, errOut := cli(t, args...)
		if code != 1 || !strings.Contains(errOut, "already exists") || out != "" {
			t.Errorf("%v over an existing CA: exit %d, stdout %q, stderr %q; want exit 1 and \"already exists\"", args, code, out, errOut)
		}
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("a refused init changed the directory: before %v, after %v", keys(before), keys(after))
	}
}

// TestInitWithExistingRoot signs the new intermediate with a root given as
// files, and refuses a root key that is not the root certificate's.
func TestInitWithExistingRoot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string // encrypts the given root key when set
		wrongKey bool   // gives a key that is not the root's
	}{
		{name: "ok/plain-root-key"},
		{name: "ok/encrypted-root-key", password: "root passphrase"},
		{name: "fail/root-key-does-not-match-root-cert", wrongKey: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := t.TempDir()
			rootKey := catest.Key(t, ca.KeyP384)
			root, err := ca.NewRoot(ca.RootRequest{CommonName: "Existing Root", Key: rootKey, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			rootCertPath, rootKeyPath := filepath.Join(in, "existing-root.crt"), filepath.Join(in, "existing-root.key")
			if err := ca.WriteCertificates(rootCertPath, root); err != nil {
				t.Fatal(err)
			}
			key := rootKey
			if tt.wrongKey {
				key = catest.Key(t, ca.KeyP384)
			}
			args := []string{"init", "--dir", filepath.Join(in, "ca"), "--trust-domain", testTrustDomain, "--root-cert", rootCertPath, "--root-key", rootKeyPath}
			var pass []byte
			if tt.password != "" {
				pass = []byte(tt.password)
				pwPath := filepath.Join(in, "root.pass")
				if err := os.WriteFile(pwPath, append(pass, '\n'), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--root-key-password-file", pwPath)
			}
			if err := ca.WriteKey(rootKeyPath, key, pass); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(in, "ca")

			code, stdout, stderr := cli(t, args...)
			if tt.wrongKey {
				if code != 1 || !strings.Contains(stderr, "root key") {
					t.Errorf("exit %d, stderr %q; want 1 and an error about the root key", code, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if got := readCerts(t, filepath.Join(dir, fileRootCert)); len(got) != 1 || !got[0].Equal(root) {
				t.Errorf("%s is not the given root", fileRootCert)
			}
			if _, err := os.Stat(filepath.Join(dir, fileRootKey)); err == nil {
				t.Errorf("init copied the given root key into the CA directory")
			}
			inter := readCerts(t, filepath.Join(dir, fileIntCert))[0]
			if err := ca.CheckIntermediate(inter, root, inter.PublicKey, time.Now()); err != nil {
				t.Errorf("intermediate does not chain to the given root: %v", err)
			}
			requireKeyPair(t, filepath.Join(dir, fileIntKey), nil, inter)
		})
	}
}

// TestInitFailureLeavesNothing checks that an init that fails part way
// removes what it wrote, so that it can simply be run again.
func TestInitFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	existing := filepath.Join(t.TempDir(), "existing")
	mustCLI(t, "init", "--dir", existing, "--trust-domain", "existing.example.com")
	other := filepath.Join(t.TempDir(), "other")
	mustCLI(t, "init", "--dir", other, "--trust-domain", "other.example.com")
	tests := []struct {
		name      string
		bad, good []string // extra init arguments that fail, and their fix
		want      string
	}{
		{
			name: "fail/root-key-of-another-root",
			bad:  []string{"--root-cert", filepath.Join(existing, fileRootCert), "--root-key", filepath.Join(other, fileRootKey)},
			good: []string{"--root-cert", filepath.Join(existing, fileRootCert), "--root-key", filepath.Join(existing, fileRootKey)},
			want: "root key",
		},
		{
			name: "fail/root-key-password-file-missing",
			bad:  []string{"--root-key-password-file", filepath.Join(existing, "no-such.pass")},
			want: "password file",
		},
		{
			name: "fail/ledger-unreachable",
			bad:  []string{"--db", "postgres://workerca:x@127.0.0.1:1/workerca?sslmode=disable&connect_timeout=5"},
			want: "connect",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			args := []string{"init", "--dir", dir, "--trust-domain", testTrustDomain}
			code, _, stderr := cli(t, append(args, tt.bad...)...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.want)
			}
			if left := snapshot(t, dir); len(left) != 0 {
				t.Errorf("a failed init left %v behind", keys(left))
			}
			mustCLI(t, append(args, tt.good...)...)
		})
	}
}

// TestInitOfflineRoot runs the offline-root ceremony: init writes a CSR,
// an openssl root signs it, intermediate import checks and installs it,
// and serve then runs on it. Certificates that do not fit are refused.
func TestInitOfflineRoot(t *testing.T) {
	requireTools(t, "openssl")
	t.Parallel()
	work := t.TempDir()
	dir := filepath.Join(work, "ca")
	stdout, _ := mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain, "--offline-root")
	p := func(f string) string { return filepath.Join(dir, f) }
	if !strings.Contains(stdout, p(fileIntCSR)) || !strings.Contains(stdout, "intermediate import") {
		t.Errorf("init --offline-root does not say what to do next:\n%s", stdout)
	}
	for _, f := range []string{fileRootCert, fileRootKey, fileIntCert} {
		if _, err := os.Stat(p(f)); err == nil {
			t.Errorf("init --offline-root wrote %s", f)
		}
	}
	requireMode(t, p(fileIntKey), 0o600)
	requireMode(t, p(fileAdminToken), 0o600)
	csrPEM, err := os.ReadFile(p(fileIntCSR))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("%s is not a PEM certificate request", fileIntCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	intKey, err := ca.LoadSigner(t.Context(), p(fileIntKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !intKey.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
		t.Fatalf("the CSR does not hold the intermediate key")
	}

	// Before import there is nothing to serve with.
	if code, _, stderr := cli(t, "serve", "--config", p(fileConfigName)); code != 1 || !strings.Contains(stderr, fileRootCert) {
		t.Errorf("serve before import: exit %d, stderr %q; want 1 and a missing %s", code, stderr, fileRootCert)
	}

	// Certificates import must refuse, made with package ca.
	goRoot := catest.NewHierarchy(t, time.Now())
	otherRoot := catest.NewHierarchy(t, time.Now())
	signed := func(tmpl *x509.Certificate, pub crypto.PublicKey) string {
		t.Helper()
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
		tmpl.Subject = pkix.Name{CommonName: "Bad Intermediate"}
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, goRoot.Root, pub, goRoot.RootKey)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(work, "bad-*.crt")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			t.Fatal(err)
		}
		return f.Name()
	}
	goodTmpl := func() *x509.Certificate {
		return &x509.Certificate{
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	goRootPath, otherRootPath := filepath.Join(work, "go-root.crt"), filepath.Join(work, "other-root.crt")
	if err := ca.WriteCertificates(goRootPath, goRoot.Root); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCertificates(otherRootPath, otherRoot.Root); err != nil {
		t.Fatal(err)
	}
	notCA := goodTmpl()
	notCA.IsCA, notCA.MaxPathLenZero, notCA.KeyUsage = false, false, x509.KeyUsageDigitalSignature
	noPathLen := goodTmpl()
	noPathLen.MaxPathLen, noPathLen.MaxPathLenZero = -1, false
	refusals := []struct {
		name, cert, root string
	}{
		{"fail/key-does-not-match", signed(goodTmpl(), catest.Key(t, ca.KeyP256).Public()), goRootPath},
		{"fail/wrong-root", signed(goodTmpl(), csr.PublicKey), otherRootPath},
		{"fail/not-a-ca", signed(notCA, csr.PublicKey), goRootPath},
		{"fail/no-path-length-0", signed(noPathLen, csr.PublicKey), goRootPath},
	}
	for _, r := range refusals {
		code, _, stderr := cli(t, "intermediate", "import", "--dir", dir, "--cert", r.cert, "--root-cert", r.root)
		if code != 1 || !strings.Contains(stderr, ca.ErrIntermediate.Error()) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", r.name, code, stderr, ca.ErrIntermediate)
		}
		for _, f := range []string{fileRootCert, fileIntCert} {
			if _, err := os.Stat(p(f)); err == nil {
				t.Fatalf("%s: import wrote %s although it refused the certificate", r.name, f)
			}
		}
	}

	// The real thing: an openssl root signs the CSR.
	cnf := `[req]
distinguished_name = dn
x509_extensions = v3_root
prompt = no
[dn]
CN = Offline Root
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`
	if err := os.WriteFile(filepath.Join(work, "offline.cnf"), []byte(cnf), 0o600); err != nil {
		t.Fatal(err)
	}
	mustTool(t, work, "openssl", "req", "-x509", "-config", "offline.cnf", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", "offline-root.key", "-days", "3650", "-out", "offline-root.crt")
	mustTool(t, work, "openssl", "x509", "-req", "-in", p(fileIntCSR), "-CA", "offline-root.crt", "-CAkey", "offline-root.key",
		"-CAcreateserial", "-days", "365", "-extfile", "offline.cnf", "-extensions", "v3_intermediate", "-out", "signed.crt")
	importArgs := []string{"intermediate", "import", "--dir", dir, "--cert", filepath.Join(work, "signed.crt"), "--root-cert", filepath.Join(work, "offline-root.crt")}
	stdout, _ = mustCLI(t, importArgs...)
	if !strings.Contains(stdout, "imported "+p(fileIntCert)) {
		t.Errorf("import output: %q", stdout)
	}
	offlineRoot := readCerts(t, filepath.Join(work, "offline-root.crt"))[0]
	if got := readCerts(t, p(fileRootCert)); !got[0].Equal(offlineRoot) {
		t.Errorf("%s is not the offline root", fileRootCert)
	}
	if got := readCerts(t, p(fileIntCert)); !got[0].Equal(readCerts(t, filepath.Join(work, "signed.crt"))[0]) {
		t.Errorf("%s is not the signed certificate", fileIntCert)
	}
	if code, _, stderr := cli(t, importArgs...); code != 1 || !strings.Contains(stderr, "already exists") {
		t.Errorf("second import: exit %d, stderr %q; want 1 and \"already exists\"", code, stderr)
	}

	// A key file others can read still serves, with a warning.
	if err := os.Chmod(p(fileIntKey), 0o640); err != nil {
		t.Fatal(err)
	}
	if stderr := serveAndHandshake(t, dir); !strings.Contains(stderr, looseKeyWarning) || !strings.Contains(stderr, p(fileIntKey)) {
		t.Errorf("serve with %s mode 0640 does not warn %q naming it:\n%s", fileIntKey, looseKeyWarning, stderr)
	}
}

// looseKeyWarning is what serve logs about a key file others can read.
const looseKeyWarning = "key file is readable by group or others"

// TestInitEncryptedKeys checks that the password-file flags encrypt the
// keys (PKCS#8 PBES2), and that serve decrypts the intermediate key with
// the configured password file and refuses a wrong password.
func TestInitEncryptedKeys(t *testing.T) {
	t.Parallel()
	t.Run("intermediate", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		dir := filepath.Join(work, "ca")
		pw := filepath.Join(work, "intermediate.pass")
		if err := os.WriteFile(pw, []byte("intermediate passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain, "--intermediate-key-password-file", pw)
		requirePEMType(t, filepath.Join(dir, fileIntKey), "ENCRYPTED PRIVATE KEY")
		requirePEMType(t, filepath.Join(dir, fileRootKey), "PRIVATE KEY")
		inter := readCerts(t, filepath.Join(dir, fileIntCert))[0]
		requireKeyPair(t, filepath.Join(dir, fileIntKey), []byte("intermediate passphrase"), inter)
		if _, err := ca.LoadSigner(t.Context(), filepath.Join(dir, fileIntKey), nil); err == nil {
			t.Errorf("the encrypted intermediate key loads without a password")
		}
		cfg, _, err := loadConfig(filepath.Join(dir, fileConfigName))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.IntermediateKeyPasswordFile != pw {
			t.Errorf("intermediate_key_password_file = %q, want %q", cfg.IntermediateKeyPasswordFile, pw)
		}

		if stderr := serveAndHandshake(t, dir); strings.Contains(stderr, looseKeyWarning) {
			t.Errorf("serve warns about the 0600 key init wrote:\n%s", stderr)
		}

		if err := os.WriteFile(pw, []byte("wrong passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := cli(t, "serve", "--config", filepath.Join(dir, fileConfigName)); code != 1 || !strings.Contains(stderr, fileIntKey) {
			t.Errorf("serve with a wrong password: exit %d, stderr %q; want 1 and an error naming %s", code, stderr, fileIntKey)
		}
	})
	t.Run("new-root", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		dir := filepath.Join(work, "ca")
		pw := filepath.Join(work, "root.pass")
		if err := os.WriteFile(pw, []byte("root passphrase\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain, "--root-key-password-file", pw)
		requirePEMType(t, filepath.Join(dir, fileRootKey), "ENCRYPTED PRIVATE KEY")
		requirePEMType(t, filepath.Join(dir, fileIntKey), "PRIVATE KEY")
		requireKeyPair(t, filepath.Join(dir, fileRootKey), []byte("root passphrase"), readCerts(t, filepath.Join(dir, fileRootCert))[0])
	})
}

// serveAndHandshake runs `serve` on the CA in dir (listening on a free
// loopback port), checks with a TLS handshake that the server certificate
// was issued by dir's intermediate and chains to dir's root, and checks
// that serve stops with exit 0 when cancelled. It returns serve's stderr.
func serveAndHandshake(t *testing.T, dir string) string {
	t.Helper()
	cfgPath := filepath.Join(dir, fileConfigName)
	editConfig(t, cfgPath, func(cfg map[string]any) {
		cfg["listen"] = map[string]any{"https": "127.0.0.1:0"}
	})
	srv := startServer(t, servingLog, "serve", "--config", cfgPath)
	roots := x509.NewCertPool()
	root := readCerts(t, filepath.Join(dir, fileRootCert))[0]
	roots.AddCert(root)
	conn, err := tls.Dial("tcp", srv.https, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake with serve, trusting only %s: %v", fileRootCert, err)
	}
	state := conn.ConnectionState()
	conn.Close()
	inter := readCerts(t, filepath.Join(dir, fileIntCert))[0]
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) != 3 || !state.VerifiedChains[0][1].Equal(inter) {
		t.Errorf("server chain does not run leaf → %s → %s", fileIntCert, fileRootCert)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d after cancellation, want 0\nstderr:\n%s", code, srv.stderr)
	}
	return srv.stderr.String()
}

// requireKeyPair checks that the PEM key file holds cert's private key.
func requireKeyPair(t *testing.T, keyPath string, password []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ca.LoadSigner(t.Context(), keyPath, password)
	if err != nil {
		t.Fatalf("load %s: %v", filepath.Base(keyPath), err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Errorf("%s is not the key of %s", filepath.Base(keyPath), cert.Subject.CommonName)
	}
}

// requirePEMType checks the type of the first PEM block in path.
func requirePEMType(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != want {
		t.Errorf("%s: PEM block %v, want %q", filepath.Base(path), block, want)
	} else if len(block.Headers) != 0 {
		t.Errorf("%s: legacy PEM encryption headers %v", filepath.Base(path), block.Headers)
	}
}

// requireAdminKey checks <dir>/admin.token: a wca_ key whose row in the
// ledger has scope admin, the only API key there. It returns the key.
func requireAdminKey(t *testing.T, dir string, sc store.Config) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fileAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(b))
	c, err := credential.Parse(credential.APIKey, admin)
	if err != nil {
		t.Fatalf("admin.token: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	row, err := st.APIKey(ctx, c.ID)
	if err != nil {
		t.Fatalf("admin key %s not in the ledger: %v", c.ID, err)
	}
	if !slices.Contains(strings.Fields(row.Scopes), "admin") || !c.Matches(row.SecretHash) || row.RevokedAt != nil {
		t.Errorf("admin key row = %+v; want scope admin, the file's secret, not revoked", row)
	}
	if n, err := st.CountAPIKeys(ctx); err != nil || n != 1 {
		t.Errorf("CountAPIKeys = %d, %v; want 1", n, err)
	}
	return admin
}

// snapshot reads every file under dir except the SQLite ledger.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), fileDatabase) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = fi.Mode().String() + "\n" + string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, filepath.Base(k))
	}
	slices.Sort(out)
	return out
}

// TestInitContainerFlags checks the flags that configure a container
// without editing workerca.json, root.pin, and --if-missing.
func TestInitContainerFlags(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	args := []string{"init", "--dir", dir, "--trust-domain", testTrustDomain, "--if-missing",
		"--https-addr", "0.0.0.0:8443", "--http-addr", "0.0.0.0:8080",
		"--dns-name", "workerca", "--dns-name", "ca.example.com", "--base-url", "http://workerca:8080"}
	mustCLI(t, args...)

	// loadConfig decodes strictly: what init writes still reads back.
	cfg, _, err := loadConfig(filepath.Join(dir, fileConfigName))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.HTTPS != "0.0.0.0:8443" || cfg.Listen.HTTP != "0.0.0.0:8080" || cfg.URLs.Base != "http://workerca:8080" ||
		!slices.Equal(cfg.ServerTLS.DNSNames, []string{"workerca", "ca.example.com"}) {
		t.Errorf("config = listen %+v, server_tls %+v, urls %+v", cfg.Listen, cfg.ServerTLS, cfg.URLs)
	}
	requireMode(t, filepath.Join(dir, fileRootPin), 0o644)
	want, err := rootPin(filepath.Join(dir, fileRootCert))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, fileRootPin)); string(b) != want+"\n" {
		t.Errorf("root.pin = %q, want %q", b, want+"\n")
	}

	// Run again, as a container restart does: nothing changes.
	before := snapshot(t, dir)
	if stdout, _ := mustCLI(t, append(args, "--trust-domain", "other.example.com")...); !strings.Contains(stdout, "nothing to do") {
		t.Errorf("--if-missing over an existing CA printed %q", stdout)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("--if-missing changed the directory: before %v, after %v", keys(before), keys(after))
	}
}

// TestInitContainerFlagsUsage checks that malformed values are refused
// before anything is written.
func TestInitContainerFlagsUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/https-addr-without-port", []string{"--https-addr", "0.0.0.0"}, "--https-addr"},
		{"fail/http-addr-without-port", []string{"--http-addr", "workerca"}, "--http-addr"},
		{"fail/dns-name-with-port", []string{"--dns-name", "workerca:8443"}, "--dns-name"},
		{"fail/base-url-relative", []string{"--base-url", "workerca:8080/x"}, "--base-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			code, _, stderr := cli(t, append([]string{"init", "--dir", dir, "--trust-domain", testTrustDomain}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("a refused init created %s", dir)
			}
		})
	}
}
