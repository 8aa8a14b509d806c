package main

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/verifier"
)

// verifyRun is `workerca verify` against one `workerca dev` server: a
// client that trusts its root, and a directory for the files verify
// reads.
type verifyRun struct {
	t      *testing.T
	dir    string // the dev CA directory
	work   string
	srv    *server
	root   string // root.crt
	admin  string
	client *http.Client
}

// verifyWorker is an enrolled worker: its key and chain, and the chain's
// PEM file.
type verifyWorker struct {
	key       crypto.Signer
	chain     []*x509.Certificate
	chainPath string
	serial    string
}

func newVerifyRun(t *testing.T, dir string, srv *server) *verifyRun {
	t.Helper()
	root := filepath.Join(dir, fileRootCert)
	roots, err := readRoots(root)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := readAPIKey(filepath.Join(dir, fileAdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return &verifyRun{
		t: t, dir: dir, work: t.TempDir(), srv: srv, root: root, admin: admin,
		client: &http.Client{Timeout: 30 * time.Second, Transport: newTransport(roots, 0, 30*time.Second)},
	}
}

// do sends req with client and returns the status and body.
func (v *verifyRun) do(client *http.Client, req *http.Request) (int, []byte) {
	v.t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// verifyPost is a POST request: its URL, content type, bearer token (if any)
// and body.
type verifyPost struct {
	url, contentType, bearer string
	body                     []byte
}

func (v *verifyRun) post(client *http.Client, p verifyPost) (int, []byte) {
	v.t.Helper()
	req, err := http.NewRequestWithContext(v.t.Context(), http.MethodPost, p.url, bytes.NewReader(p.body))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", p.contentType)
	if p.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+p.bearer)
	}
	return v.do(client, req)
}

// file writes b to name in the work directory and returns its path.
func (v *verifyRun) file(name string, b []byte) string {
	v.t.Helper()
	p := filepath.Join(v.work, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		v.t.Fatal(err)
	}
	return p
}

// enroll enrolls worker in pool default with a token from the admin API
// and a P-256 key made here.
func (v *verifyRun) enroll(worker string) verifyWorker {
	t := v.t
	t.Helper()
	base := "https://" + v.srv.https
	code, body := v.post(v.client, verifyPost{base + "/v1/admin/tokens", "application/json", v.admin,
		[]byte(`{"pool":"default","worker_id":"` + worker + `","ttl":"1h"}`)})
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &tok); code != http.StatusCreated && code != http.StatusOK || err != nil {
		t.Fatalf("POST /v1/admin/tokens = %d %s", code, body)
	}
	key := catest.Key(t, ca.KeyP256)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, key)})
	code, body = v.post(v.client, verifyPost{base + "/v1/enroll/token", "application/pkcs10", tok.Token, csr})
	if code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("POST /v1/enroll/token = %d %s", code, body)
	}
	chain := parseCerts(t, body)
	return verifyWorker{key: key, chain: chain, chainPath: v.file(worker+".pem", body), serial: ca.SerialHex(chain[0].SerialNumber)}
}

// register registers jws over mTLS with w's certificate and returns the
// answer's body (JSON with "receipt").
func (v *verifyRun) register(w verifyWorker, jws string) []byte {
	t := v.t
	t.Helper()
	roots, err := readRoots(v.root)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{PrivateKey: w.key, Leaf: w.chain[0]}
	for _, c := range w.chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	tr := newTransport(roots, 0, 30*time.Second)
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	body, _ := json.Marshal(map[string]any{"signature": jws, "expires_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)})
	code, answer := v.post(&http.Client{Timeout: 30 * time.Second, Transport: tr}, verifyPost{"https://" + v.srv.https + "/v1/artifacts", "application/json", "", body})
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/artifacts = %d %s", code, answer)
	}
	return answer
}

// crl fetches w's shard CRL from the URL its certificate names.
func (v *verifyRun) crl(w verifyWorker, name string) string {
	v.t.Helper()
	req, err := http.NewRequestWithContext(v.t.Context(), http.MethodGet, w.chain[0].CRLDistributionPoints[0], nil)
	if err != nil {
		v.t.Fatal(err)
	}
	code, body := v.do(v.client, req)
	if code != http.StatusOK {
		v.t.Fatalf("GET %s = %d", req.URL, code)
	}
	return v.file(name, body)
}

// verify runs `workerca verify args... --json` and checks the exit
// status and, for 0 and 1, the result's code.
func (v *verifyRun) verify(wantExit int, wantCode string, args ...string) *verifier.Result {
	t := v.t
	t.Helper()
	args = append([]string{"verify"}, append(args, "--json")...)
	code, stdout, stderr := cli(t, args...)
	if code != wantExit {
		t.Fatalf("workerca %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantExit, stdout, stderr)
	}
	if wantExit == exitUndecided {
		if stdout != "" || !strings.HasPrefix(stderr, "workerca: ") {
			t.Errorf("could not decide: stdout %q, stderr %q; want nothing and the reason", stdout, stderr)
		}
		return nil
	}
	var res verifier.Result
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil || strings.Count(strings.TrimSpace(stdout), "\n") != 0 {
		t.Fatalf("stdout is not one JSON object (%v):\n%s", err, stdout)
	}
	if res.Code != wantCode || res.Accepted != (wantExit == 0) {
		t.Fatalf("workerca %s: code %s accepted %v (%s), want %s", strings.Join(args, " "), res.Code, res.Accepted, res.Message, wantCode)
	}
	return &res
}

// unusedLoopbackAddr is a loopback address where nothing listens.
func unusedLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestVerifyEndToEnd runs `workerca verify cert` and `workerca verify
// artifact` against `workerca dev` on loopback: certificates and
// artifacts (with real receipts from POST /v1/artifacts) through the
// status API over HTTPS and plain HTTP and through the shard CRLs, before
// and after `workerca revoke`, and the exit statuses.
func TestVerifyEndToEnd(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	srv := startServer(t, devBanner, "dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
	if srv.http == "" {
		t.Fatalf("banner names no plain HTTP listener:\n%s", srv.stdout)
	}
	v := newVerifyRun(t, dir, srv)
	base, plain := "https://"+srv.https, "http://"+srv.http

	keys, err := verifier.FetchStatusKeys(t.Context(), base, v.client)
	if err != nil {
		t.Fatal(err)
	}
	keysJSON, _ := json.Marshal(keys)
	keysPath := v.file("status-keys.json", keysJSON)

	compromised := v.enroll("builder-1")
	superseded := v.enroll("builder-2")
	artifactPath := v.file("app.tar.gz", []byte("release 1.0"))
	tamperedPath := v.file("app-tampered.tar.gz", []byte("release 1.0, tampered"))
	signAndRegister := func(w verifyWorker, name string) (sigPath, receiptPath, answerPath string) {
		t.Helper()
		jws, err := artifact.SignFile(artifactPath, artifact.Signer{Key: w.key, Chain: w.chain}, "app.tar.gz")
		if err != nil {
			t.Fatal(err)
		}
		answer := v.register(w, jws)
		var reg struct {
			Receipt string `json:"receipt"`
		}
		if err := json.Unmarshal(answer, &reg); err != nil || reg.Receipt == "" {
			t.Fatalf("POST /v1/artifacts answered %s, want a receipt", answer)
		}
		return v.file(name+".jws", []byte(jws)), v.file(name+".receipt", []byte(reg.Receipt)), v.file(name+".json", answer)
	}
	sig1, receipt1, answer1 := signAndRegister(compromised, "app-1")
	sig2, receipt2, _ := signAndRegister(superseded, "app-2")

	// A receipt for the same signature, signed by a key that is not the CA's.
	forger, err := artifact.NewReceiptSigner(catest.Key(t, ca.KeyP256))
	if err != nil {
		t.Fatal(err)
	}
	sigBytes, _ := os.ReadFile(sig1)
	parsed, err := artifact.Parse(string(sigBytes))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.Sign(artifact.Receipt{SHA256: parsed.Payload.SHA256, Serial: compromised.serial,
		SPIFFEID: compromised.chain[0].URIs[0].String(), RegisteredAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(time.Hour),
		SignatureSHA256: parsed.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	forgedPath := v.file("forged.receipt", []byte(forged))
	crlBefore := v.crl(compromised, "before.crl")

	cert := func(w verifyWorker, args ...string) []string {
		return append([]string{"cert", w.chainPath, "--bundle", v.root}, args...)
	}
	art := func(sig string, args ...string) []string {
		return append([]string{"artifact", "--file", artifactPath, "--sig", sig, "--bundle", v.root}, args...)
	}
	type verifyCase struct {
		name     string
		args     []string
		exit     int
		code     string
		atSource string
	}
	run := func(tests []verifyCase) {
		t.Helper()
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				v := *v
				v.t = t
				res := v.verify(tc.exit, tc.code, tc.args...)
				if res != nil && tc.atSource != "" && res.AtSource != tc.atSource {
					t.Errorf("at_source %s, want %s", res.AtSource, tc.atSource)
				}
			})
		}
	}

	run([]verifyCase{
		{"ok/cert-status-over-https-keys-fetched", cert(compromised, "--status-url", base), 0, "ok", verifier.AtNow},
		{"ok/cert-status-over-http-keys-pinned", cert(compromised, "--status-url", plain, "--status-keys", keysPath), 0, "ok", ""},
		{"ok/cert-status-url-with-path", cert(compromised, "--status-url", base+"/v1/status/", "--status-keys", keysPath), 0, "ok", ""},
		{"ok/cert-at", cert(compromised, "--status-url", base, "--at", time.Now().Add(-5*time.Second).UTC().Format(time.RFC3339)), 0, "ok", verifier.AtGiven},
		{"ok/cert-trust-domain-and-pool", cert(compromised, "--status-url", base, "--trust-domain", devTrustDomain, "--allow-pool", "other", "--allow-pool", "default"), 0, "ok", ""},
		{"fail/cert-pool-not-allowed", cert(compromised, "--status-url", base, "--allow-pool", "other"), 1, verifier.CodePoolNotAllowed, ""},
		{"fail/cert-trust-domain-mismatch", cert(compromised, "--status-url", base, "--trust-domain", "workers.example.com"), 1, verifier.CodeTrustDomainMismatch, ""},
		{"ok/cert-crl", cert(compromised, "--crl", crlBefore), 0, "ok", ""},
		{"ok/cert-no-revocation-check", cert(compromised, "--no-revocation-check"), 0, "ok", ""},
		{"ok/artifact-without-receipt", art(sig1, "--status-url", base), 0, "ok", verifier.AtNow},
		{"ok/artifact-receipt", art(sig1, "--status-url", base, "--receipt", receipt1), 0, "ok", verifier.AtReceipt},
		{"ok/artifact-receipt-as-registration-answer", art(sig1, "--status-url", plain, "--status-keys", keysPath, "--receipt", answer1), 0, "ok", verifier.AtReceipt},
		{"ok/artifact-crl-receipt", art(sig1, "--crl", crlBefore, "--status-keys", keysPath, "--receipt", receipt1), 0, "ok", verifier.AtReceipt},
		{"fail/artifact-tampered-file", append(art(sig1, "--status-url", base), "--file", tamperedPath), 1, verifier.CodeDigestMismatch, ""},
		{"fail/artifact-receipt-signed-by-another-key", art(sig1, "--status-url", base, "--receipt", forgedPath), 1, verifier.CodeReceiptUntrusted, ""},
		{"fail/artifact-receipt-of-another-signature", art(sig1, "--status-url", base, "--receipt", receipt2), 1, verifier.CodeReceiptMismatch, ""},
		{"fail/unreachable-status-url", cert(compromised, "--status-url", "http://"+unusedLoopbackAddr(t), "--status-keys", keysPath), exitUndecided, "", ""},
		{"fail/unreachable-https-status-url", cert(compromised, "--status-url", "https://"+unusedLoopbackAddr(t)), exitUndecided, "", ""},
		{"fail/missing-bundle-file", []string{"cert", compromised.chainPath, "--bundle", filepath.Join(v.work, "missing.crt"), "--status-url", base}, exitUndecided, "", ""},
		{"fail/missing-leaf-file", cert(verifyWorker{chainPath: filepath.Join(v.work, "missing.pem")}, "--status-url", base), exitUndecided, "", ""},
		{"fail/missing-artifact-file", append(art(sig1, "--status-url", base), "--file", filepath.Join(v.work, "missing")), exitUndecided, "", ""},
	})

	res := v.verify(0, verifier.CodeOK, cert(compromised, "--status-url", base)...)
	if res.Serial != compromised.serial || res.SPIFFEID != "spiffe://"+devTrustDomain+"/worker/default/builder-1" ||
		res.Pool != "default" || res.WorkerID != "builder-1" || res.Revocation != verifier.RevocationGood || res.RevokedAt != nil {
		t.Errorf("verify cert --json = %+v", res)
	}

	// Revocation times are whole seconds: revoke after the registrations'
	// second has passed, as it would in life.
	time.Sleep(1100 * time.Millisecond)
	// A second before the revocations' (truncated) second.
	beforeRevocation := time.Now().UTC().Truncate(time.Second).Add(-time.Second).Format(time.RFC3339)
	for _, r := range []struct {
		w      verifyWorker
		reason string
	}{{compromised, "keyCompromise"}, {superseded, "superseded"}} {
		stdout, _ := mustCLI(t, "revoke", "--ca-url", base, "--root", v.root, "--api-key-file", filepath.Join(dir, fileAdminToken),
			"--serial", r.w.serial, "--reason", r.reason)
		if !strings.Contains(stdout, r.w.serial) {
			t.Fatalf("workerca revoke printed %s", stdout)
		}
	}
	// The shard's CRL is rebuilt in the background within a second.
	var crlAfter string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		crlAfter = v.crl(compromised, "after.crl")
		if code, _, _ := cli(t, "verify", "cert", compromised.chainPath, "--bundle", v.root, "--crl", crlAfter); code == exitRejected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the CRL does not list the revoked certificate after 10 s")
		}
	}

	run([]verifyCase{
		{"fail/cert-key-compromised", cert(compromised, "--status-url", base), 1, verifier.CodeKeyCompromised, ""},
		{"fail/cert-superseded", cert(superseded, "--status-url", plain, "--status-keys", keysPath), 1, verifier.CodeRevoked, ""},
		{"fail/cert-crl-key-compromised", cert(compromised, "--crl", crlAfter), 1, verifier.CodeKeyCompromised, ""},
		{"ok/cert-before-the-revocation", cert(superseded, "--status-url", base, "--at", beforeRevocation), 0, "ok", verifier.AtGiven},
		{"fail/artifact-receipt-key-compromised-without-invalidity-date", art(sig1, "--status-url", base, "--receipt", receipt1), 1, verifier.CodeKeyCompromised, verifier.AtReceipt},
		{"ok/artifact-receipt-superseded-after-signing", art(sig2, "--status-url", base, "--receipt", receipt2), 0, "ok", verifier.AtReceipt},
		{"ok/artifact-crl-receipt-superseded-after-signing", art(sig2, "--crl", v.crl(superseded, "after2.crl"), "--status-keys", keysPath, "--receipt", receipt2), 0, "ok", verifier.AtReceipt},
		{"fail/artifact-superseded-without-receipt", art(sig2, "--status-url", base), 1, verifier.CodeRevoked, verifier.AtNow},
	})

	res = v.verify(1, verifier.CodeKeyCompromised, cert(compromised, "--status-url", base)...)
	if res.Revocation != verifier.RevocationRevoked || res.Reason != "keyCompromise" || res.RevokedAt == nil || res.InvalidityDate != nil {
		t.Errorf("verify cert --json after revoke = %+v", res)
	}

	// Without --json, a short summary for people.
	code, stdout, _ := cli(t, "verify", "artifact", "--file", artifactPath, "--sig", sig1, "--bundle", v.root, "--status-url", base, "--receipt", receipt1)
	if code != exitRejected || !strings.HasPrefix(stdout, "REJECTED key_compromised: ") ||
		!strings.Contains(stdout, "spiffe://"+devTrustDomain+"/worker/default/builder-1") || !strings.Contains(stdout, "(receipt)") {
		t.Errorf("summary: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = cli(t, "verify", "cert", superseded.chainPath, "--bundle", v.root, "--no-revocation-check")
	if code != 0 || !strings.HasPrefix(stdout, "ACCEPTED ok: ") || !strings.Contains(stdout, "revocation was NOT checked") {
		t.Errorf("summary with --no-revocation-check: exit %d\n%s", code, stdout)
	}
}

// TestVerifyUsage checks that wrong invocations of verify exit 2 with
// the reason, and touch nothing else.
func TestVerifyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := catest.NewHierarchy(t, time.Now())
	root := filepath.Join(dir, "root.crt")
	if err := ca.WriteCertificates(root, h.Root); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(dir, "leaf.pem")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail/cert-without-leaf", []string{"cert", "--bundle", root, "--no-revocation-check"}, "exactly one LEAF"},
		{"fail/cert-two-leaves", []string{"cert", leaf, leaf, "--bundle", root, "--no-revocation-check"}, "exactly one LEAF"},
		{"fail/cert-without-bundle", []string{"cert", leaf, "--no-revocation-check"}, "needs --bundle"},
		{"fail/no-revocation-source", []string{"cert", leaf, "--bundle", root}, "exactly one of --status-url, --crl and --no-revocation-check"},
		{"fail/status-url-and-crl", []string{"cert", leaf, "--bundle", root, "--status-url", "https://ca", "--crl", "x.crl"}, "exactly one of"},
		{"fail/crl-and-no-check", []string{"cert", leaf, "--bundle", root, "--crl", "x.crl", "--no-revocation-check"}, "exactly one of"},
		{"fail/plain-http-without-status-keys", []string{"cert", leaf, "--bundle", root, "--status-url", "http://ca:8080"}, "keys fetched over plain HTTP prove nothing"},
		{"fail/status-url-not-http", []string{"cert", leaf, "--bundle", root, "--status-url", "ftp://ca"}, "--status-url"},
		{"fail/at-not-rfc3339", []string{"cert", leaf, "--bundle", root, "--no-revocation-check", "--at", "yesterday"}, "not an RFC 3339 time"},
		{"fail/at-in-the-future", []string{"cert", leaf, "--bundle", root, "--no-revocation-check", "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{"fail/bad-trust-domain", []string{"cert", leaf, "--bundle", root, "--no-revocation-check", "--trust-domain", "Not A Domain"}, "TrustDomain"},
		{"fail/artifact-without-file", []string{"artifact", "--sig", "s.jws", "--bundle", root, "--no-revocation-check"}, "needs --file and --sig"},
		{"fail/artifact-argument", []string{"artifact", "extra", "--file", "f", "--sig", "s.jws", "--bundle", root, "--no-revocation-check"}, "takes no arguments"},
		{"fail/artifact-at", []string{"artifact", "--file", "f", "--sig", "s.jws", "--bundle", root, "--no-revocation-check", "--at", "2026-01-01T00:00:00Z"}, "unknown flag: --at"},
		{"fail/receipt-without-status-keys", []string{"artifact", "--file", "f", "--sig", "s", "--bundle", root, "--crl", "x.crl", "--receipt", "r"}, "--receipt needs the CA's status keys"},
		{"fail/receipt-plain-status-url-without-keys", []string{"artifact", "--file", "f", "--sig", "s", "--bundle", root, "--status-url", "http://ca", "--receipt", "r"}, "prove nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"verify"}, tt.args...)
			code, stdout, stderr := cli(t, args...)
			if code != 2 {
				t.Errorf("workerca %s: exit %d, want 2\nstderr: %s", strings.Join(args, " "), code, stderr)
			}
			if !strings.HasPrefix(stderr, "workerca: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want \"workerca: ...%s...\"", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

// TestVerifyHelp checks that the help names the flags and the exit
// statuses.
func TestVerifyHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"verify"}},
		{[]string{"verify", "--help"}, []string{"cert", "artifact", "3 could not decide", "plain HTTP prove nothing"}},
		{[]string{"verify", "cert", "--help"}, []string{"--bundle", "--intermediates", "--at", "--status-url", "--crl", "--no-revocation-check",
			"--allow-pool", "--trust-domain", "--status-keys", "--json", "0 accepted, 1 rejected, 2 usage error, 3 could not decide"}},
		{[]string{"verify", "artifact", "--help"}, []string{"--file", "--sig", "--receipt", "--bundle", "--status-url", "--crl", "--status-keys",
			"--allow-pool", "--json", "keyCompromise", "0 accepted, 1 rejected"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, stdout)
				}
			}
		})
	}
}
