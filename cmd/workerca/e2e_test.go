package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestEndToEndOpenSSLCurl runs the quickstart the dev banner prints, with
// the real openssl and curl against `workerca dev` on loopback, on each
// ledger: enrollment tokens from the admin API and from `token create`,
// a chain openssl verifies, the SPIFFE ID in the certificate, the ledger
// row read back through the API, single use of tokens, and a graceful
// shutdown on cancellation.
func TestEndToEndOpenSSLCurl(t *testing.T) {
	requireTools(t, "openssl", "curl")
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			args := []string{"dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
			if driver == store.DriverPostgres {
				args = append(args, "--db", storetest.Config(t, driver).DSN)
			}
			srv := startServer(t, devBanner, args...)
			if srv.http == "" {
				t.Fatalf("banner names no plain HTTP listener:\n%s", srv.stdout)
			}
			e := &e2e{t: t, dir: dir, srv: srv, work: t.TempDir()}
			cfg, _, err := loadConfig(filepath.Join(dir, fileConfigName))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Database.Driver != driver || cfg.TrustDomain != "dev.workerca.test" {
				t.Fatalf("dev wrote database driver %q, trust domain %q; want %q, \"dev.workerca.test\"", cfg.Database.Driver, cfg.TrustDomain, driver)
			}
			if _, err := os.Stat(filepath.Join(dir, fileDatabase)); (driver == store.DriverSQLite) != (err == nil) {
				t.Errorf("%s with driver %s: stat error %v", fileDatabase, driver, err)
			}

			rootPath := filepath.Join(dir, fileRootCert)
			adminPath := filepath.Join(dir, fileAdminToken)
			requireMode(t, adminPath, 0o600)
			b, err := os.ReadFile(adminPath)
			if err != nil {
				t.Fatal(err)
			}
			admin := strings.TrimSpace(string(b))
			if !strings.HasPrefix(admin, "wca_") {
				t.Fatalf("admin.token holds %q, want a wca_ API key", admin)
			}
			e.admin = admin
			if !strings.Contains(srv.stdout.String(), rootPath) || !strings.Contains(srv.stdout.String(), adminPath) {
				t.Errorf("banner does not name %s and %s:\n%s", rootPath, adminPath, srv.stdout)
			}

			// The plain HTTP listener serves the trust anchor.
			bundle := mustTool(t, e.work, "curl", "-sS", "--fail-with-body", "http://"+srv.http+"/v1/bundle")
			if got, want := parseCerts(t, []byte(bundle)), readCerts(t, rootPath); len(got) != 1 || !got[0].Equal(want[0]) {
				t.Errorf("GET /v1/bundle over HTTP = %d certificates, want root.crt", len(got))
			}

			// Token from the admin API.
			var tok struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			out := e.curlAdmin("-H", "Content-Type: application/json", "-d", `{"pool":"default","worker_id":"host-01","ttl":"1h"}`,
				"https://"+srv.https+"/v1/admin/tokens")
			if err := json.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Token, "wct_") {
				t.Fatalf("POST /v1/admin/tokens = %s (%v), want a wct_ token", out, err)
			}
			if d := time.Until(tok.ExpiresAt); d < 50*time.Minute || d > time.Hour {
				t.Errorf("token expires_at %s is not an hour from now", tok.ExpiresAt)
			}
			e.enroll(tok.Token, "host-01")

			// The token is single use.
			if out, err := e.curlEnroll(tok.Token, "again"); err == nil || !strings.Contains(out, `"token_used"`) {
				t.Errorf("second enrollment with one token: err %v, output %s; want a token_used refusal", err, out)
			}

			// Token from the CLI, which opens the same ledger while the server runs.
			stdout, _ := mustCLI(t, "token", "create", "--config", filepath.Join(dir, fileConfigName), "--pool", "default", "--worker", "host-02", "--ttl", "1h")
			e.enroll(strings.TrimSpace(stdout), "host-02")
			e.revoke("host-02")

			if code := srv.stop(t); code != 0 {
				t.Fatalf("dev exited %d after cancellation, want 0 (graceful shutdown)\nstderr:\n%s", code, srv.stderr)
			}
			if c, err := net.DialTimeout("tcp", srv.https, time.Second); err == nil {
				c.Close()
				t.Errorf("HTTPS listener %s still accepts connections after shutdown", srv.https)
			}
			// init prints only the path of the admin key, never the key.
			_, secret, _ := strings.Cut(strings.TrimPrefix(admin, "wca_"), "_")
			if secret == "" {
				t.Fatalf("admin key %q has no secret part", admin)
			}
			if strings.Contains(srv.stdout.String(), secret) || strings.Contains(srv.stderr.String(), secret) {
				t.Errorf("the admin key's secret appears in the server's output")
			}
		})
	}
}

// e2e is one end-to-end run against a dev server.
type e2e struct {
	t     *testing.T
	dir   string // the dev CA directory
	work  string // where openssl and curl write
	srv   *server
	admin string
}

func (e *e2e) curlAdmin(args ...string) string {
	e.t.Helper()
	args = append([]string{"-sS", "--fail-with-body", "--cacert", filepath.Join(e.dir, fileRootCert),
		"-H", "Authorization: Bearer " + e.admin}, args...)
	return mustTool(e.t, e.work, "curl", args...)
}

// curlEnroll makes a fresh P-256 key and CSR in the directory name with
// openssl and posts the CSR with the token; the answer's body lands in
// name/chain.pem. It returns curl's output followed by the body.
func (e *e2e) curlEnroll(token, name string) (string, error) {
	e.t.Helper()
	wd := filepath.Join(e.work, name)
	if err := os.Mkdir(wd, 0o700); err != nil {
		e.t.Fatal(err)
	}
	mustTool(e.t, wd, "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "key.pem", "-subj", "/CN=whatever", "-out", "req.pem")
	out, err := tool(e.t, wd, "curl", "-sS", "--fail-with-body", "--cacert", filepath.Join(e.dir, fileRootCert),
		"-H", "Authorization: Bearer "+token, "-H", "Content-Type: application/pkcs10", "--data-binary", "@req.pem",
		"-D", "headers.txt", "-o", "chain.pem", "https://"+e.srv.https+"/v1/enroll/token")
	body, _ := os.ReadFile(filepath.Join(wd, "chain.pem"))
	return out + string(body), err
}

// enroll enrolls worker with token and checks the certificate with openssl
// and crypto/x509, and its ledger row through the admin API.
func (e *e2e) enroll(token, worker string) {
	t := e.t
	t.Helper()
	if !strings.HasPrefix(token, "wct_") {
		t.Fatalf("token %q is not a wct_ enrollment token", token)
	}
	if out, err := e.curlEnroll(token, worker); err != nil {
		t.Fatalf("curl POST /v1/enroll/token for %s: %v\n%s", worker, err, out)
	}
	wd := filepath.Join(e.work, worker)
	chainPEM, err := os.ReadFile(filepath.Join(wd, "chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	chain := parseCerts(t, chainPEM)
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(chain))
	}
	if inter := readCerts(t, filepath.Join(e.dir, fileIntCert)); !chain[1].Equal(inter[0]) {
		t.Errorf("second certificate of the chain is not %s", fileIntCert)
	}
	for name, c := range map[string]*x509.Certificate{"leaf.pem": chain[0], "intermediate.pem": chain[1]} {
		if err := os.WriteFile(filepath.Join(wd, name), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	out := mustTool(t, wd, "openssl", "verify", "-CAfile", filepath.Join(e.dir, fileRootCert), "-untrusted", "intermediate.pem", "leaf.pem")
	if strings.TrimSpace(out) != "leaf.pem: OK" {
		t.Errorf("openssl verify = %q, want \"leaf.pem: OK\"", out)
	}

	leaf := chain[0]
	wantID := "spiffe://dev.workerca.test/worker/default/" + worker
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != wantID {
		t.Errorf("URI SANs = %v, want exactly [%s]", leaf.URIs, wantID)
	}
	if leaf.Subject.CommonName != worker {
		t.Errorf("subject CN = %q, want the worker ID %q from the token, not the CSR's", leaf.Subject.CommonName, worker)
	}
	if leaf.IsCA {
		t.Errorf("worker certificate is a CA")
	}
	keyPEM, err := os.ReadFile(filepath.Join(wd, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		t.Fatal("key.pem holds no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("openssl key: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("openssl key is a %T", key)
	}
	if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Errorf("the certificate does not hold the key of the CSR")
	}

	serialLine := strings.TrimSpace(mustTool(t, wd, "openssl", "x509", "-in", "leaf.pem", "-noout", "-serial"))
	serial, ok := strings.CutPrefix(serialLine, "serial=")
	if !ok || serial == "" {
		t.Fatalf("openssl x509 -serial = %q", serialLine)
	}
	serial = strings.ToLower(serial)
	headers, err := os.ReadFile(filepath.Join(wd, "headers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(bytes.ToLower(headers), []byte("workerca-serial: "+serial)) {
		t.Errorf("response headers do not carry Workerca-Serial %s:\n%s", serial, headers)
	}

	for _, s := range []string{serial, strings.ToUpper(serial)} {
		var row struct {
			Serial         string `json:"serial"`
			WorkerID       string `json:"worker_id"`
			Pool           string `json:"pool"`
			SPIFFEID       string `json:"spiffe_id"`
			Method         string `json:"method"`
			CertificatePEM string `json:"certificate_pem"`
		}
		out := e.curlAdmin("https://" + e.srv.https + "/v1/admin/certificates/" + s)
		if err := json.Unmarshal([]byte(out), &row); err != nil {
			t.Fatalf("GET /v1/admin/certificates/%s: %v\n%s", s, err, out)
		}
		if row.Serial != serial || row.WorkerID != worker || row.Pool != "default" || row.SPIFFEID != wantID || row.Method != "token" {
			t.Errorf("ledger row for %s = %+v; want serial %s, worker %s, pool default, %s, method token", s, row, serial, worker, wantID)
		}
		if got := parseCerts(t, []byte(row.CertificatePEM)); len(got) != 1 || !got[0].Equal(leaf) {
			t.Errorf("ledger row for %s does not hold the issued certificate", s)
		}
	}
}

// revoke checks worker's certificate with openssl against the OCSP URL and
// CRL its certificate names (the dev server's own listener), revokes it
// with `workerca revoke`, and checks both say revoked.
func (e *e2e) revoke(worker string) {
	t := e.t
	t.Helper()
	wd := filepath.Join(e.work, worker)
	leaf := readCerts(t, filepath.Join(wd, "leaf.pem"))[0]
	if len(leaf.OCSPServer) != 1 || len(leaf.CRLDistributionPoints) != 1 || len(leaf.IssuingCertificateURL) != 1 {
		t.Fatalf("leaf AIA/CDP: ocsp %v crl %v issuer %v", leaf.OCSPServer, leaf.CRLDistributionPoints, leaf.IssuingCertificateURL)
	}
	if want := "http://" + e.srv.http + "/ocsp"; leaf.OCSPServer[0] != want {
		t.Fatalf("leaf OCSP URL %s, want %s", leaf.OCSPServer[0], want)
	}
	rootPath := filepath.Join(e.dir, fileRootCert)
	ocspCheck := func(want string) {
		t.Helper()
		out := mustTool(t, wd, "openssl", "ocsp", "-issuer", "intermediate.pem", "-cert", "leaf.pem", "-url", leaf.OCSPServer[0], "-CAfile", rootPath)
		if !strings.Contains(out, "leaf.pem: "+want) || !strings.Contains(out, "Response verify OK") {
			t.Fatalf("openssl ocsp: want %s and a verified response:\n%s", want, out)
		}
	}
	crlCheck := func() (string, error) {
		mustTool(t, wd, "curl", "-sS", "--fail-with-body", "-o", "shard.crl", leaf.CRLDistributionPoints[0])
		mustTool(t, wd, "openssl", "crl", "-inform", "DER", "-in", "shard.crl", "-out", "shard.crl.pem")
		return tool(t, wd, "openssl", "verify", "-crl_check", "-CAfile", rootPath, "-untrusted", "intermediate.pem", "-CRLfile", "shard.crl.pem", "leaf.pem")
	}
	ocspCheck("good")
	if out, err := crlCheck(); err != nil || !strings.Contains(out, "leaf.pem: OK") {
		t.Fatalf("openssl verify -crl_check before revocation: %v\n%s", err, out)
	}
	// The caIssuers URL serves the intermediate as DER.
	mustTool(t, wd, "curl", "-sS", "--fail-with-body", "-o", "issuer.der", leaf.IssuingCertificateURL[0])
	if der, err := os.ReadFile(filepath.Join(wd, "issuer.der")); err != nil || !bytes.Equal(der, readCerts(t, filepath.Join(e.dir, fileIntCert))[0].Raw) {
		t.Fatalf("caIssuers URL does not serve the intermediate as DER (%v)", err)
	}

	serial := ca.SerialHex(leaf.SerialNumber)
	stdout, _ := mustCLI(t, "revoke", "--ca-url", "https://"+e.srv.https, "--root", rootPath,
		"--api-key-file", filepath.Join(e.dir, fileAdminToken), "--serial", serial, "--reason", "keyCompromise")
	if !strings.Contains(stdout, `"revoked":["`+serial+`"]`) {
		t.Fatalf("workerca revoke printed %s, want %s revoked", stdout, serial)
	}
	ocspCheck("revoked")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := crlCheck()
		if strings.Contains(out, "error 44") {
			t.Fatalf("openssl verify: CRL scope error 44:\n%s", out)
		}
		if err != nil && strings.Contains(out, "error 23") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL does not list the revoked certificate after 10 s: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
