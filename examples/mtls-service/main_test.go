package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/syncbuf"
	"github.com/workerca/workerca/workertls"
)

// workercaBin is the workerca binary TestMain builds.
var workercaBin string

func TestMain(m *testing.M) { os.Exit(devca.Main(m, &workercaBin)) }

// waitFor polls out until re matches, for up to 30 s.
func waitFor(t *testing.T, what string, out *syncbuf.Buffer, re *regexp.Regexp, exited <-chan struct{}) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready; output:\n%s", what, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready in 30s; output:\n%s", what, out)
	return nil
}

// startDevCA makes a development CA with pools "default" and "ci" (both
// enrolling with tokens) and serves it on loopback ports the kernel picks.
func startDevCA(t *testing.T) *devca.CA {
	t.Helper()
	return devca.StartWith(t, workercaBin, func(cfg map[string]any) {
		cfg["pools"] = append(cfg["pools"].([]any), map[string]any{"name": "ci", "ttl": "24h", "methods": []string{"token"}})
	})
}

// enroll mints a token for pool/worker, enrolls a new P-256 key with it
// (POST /v1/enroll/token) and writes the agent's files into dir,
// replacing each atomically. It returns the new leaf.
func enroll(t *testing.T, dev *devca.CA, pool, worker, dir string) *x509.Certificate {
	t.Helper()
	token := dev.MintToken(t, pool, worker)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: worker}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, dev.URL+"/v1/enroll/token", bytes.NewReader(csr))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := dev.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	chainPEM, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("enroll %s/%s: %s: %s", pool, worker, resp.Status, chainPEM)
	}
	block, _ := pem.Decode(chainPEM)
	if block == nil {
		t.Fatalf("enroll %s/%s: no PEM in %q", pool, worker, chainPEM)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	root := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dev.Root.Raw})
	writeAgentFiles(t, dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), chainPEM, root)
	return leaf
}

// writeAgentFiles writes the agent layout into dir as the agent does: key
// first, then cert, chain and bundle, each a temporary file renamed over
// the old one.
func writeAgentFiles(t *testing.T, dir string, keyPEM, chainPEM, bundlePEM []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	leafPEM := chainPEM
	if b, _ := pem.Decode(chainPEM); b != nil {
		leafPEM = pem.EncodeToMemory(b)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"key.pem", keyPEM, 0o600}, {"cert.pem", leafPEM, 0o644}, {"chain.pem", chainPEM, 0o644}, {"bundle.pem", bundlePEM, 0o644}} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			t.Fatal(err)
		}
	}
}

// service is the example running in-process.
type service struct {
	addr   string
	stderr *syncbuf.Buffer
}

var listening = regexp.MustCompile(`listening on https://(\S+)`)

// startService runs the example with args after --listen and --dir.
func startService(t *testing.T, dir string, args ...string) *service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	exited := make(chan struct{})
	code := 0
	go func() {
		code = run(ctx, append([]string{"mtls-service", "--listen", "127.0.0.1:0", "--dir", dir}, args...), stdout, stderr)
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
			if code != 0 {
				t.Errorf("mtls-service exited %d:\n%s", code, stderr)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("mtls-service did not stop within 5s")
		}
	})
	m := waitFor(t, "mtls-service", stdout, listening, exited)
	return &service{addr: m[1], stderr: stderr}
}

// hello connects to s as the worker whose files are in dir, expecting the
// service to be svc, and returns the body and the serial the service saw.
func hello(t *testing.T, s *service, dir string, svc spiffeid.ID) (body, serial string, err error) {
	t.Helper()
	return helloWith(t, s, clientConfig(t, dir, svc))
}

// clientConfig is the worker's TLS configuration, looking at its files on
// every handshake.
func clientConfig(t *testing.T, dir string, svc spiffeid.ID) *tls.Config {
	t.Helper()
	tc, err := workertls.NewClientConfig(t.Context(), workertls.ClientConfig{
		Dir: dir, ReloadInterval: -1, AuthorizeServer: workertls.AllowIDs(svc),
	})
	if err != nil {
		t.Fatalf("NewClientConfig(%s): %v", dir, err)
	}
	return tc
}

// helloWith connects to s with tc on a new connection.
func helloWith(t *testing.T, s *service, tc *tls.Config) (body, serial string, err error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tc}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	resp, err := c.Get("https://" + s.addr + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return string(b), resp.Header.Get("Worker-Certificate-Serial"), nil
}

// refused expects the connection as dir's worker to fail, and the
// service to log want as the reason.
func refused(t *testing.T, s *service, dir string, svc spiffeid.ID, want string) {
	t.Helper()
	body, _, err := hello(t, s, dir, svc)
	if err == nil {
		t.Fatalf("worker %s was let in: %q", dir, body)
	}
	if !strings.Contains(s.stderr.String(), want) {
		t.Errorf("service log does not say %q:\n%s", want, s.stderr)
	}
}

// TestEndToEnd runs the example against a real `workerca dev`: enrolled
// workers of an allowed pool get in, others and a foreign CA's do not, a
// renewal is picked up without a restart, a revocation is seen within
// the CRL refresh interval, and an unreachable CRL refuses unless
// --fail-open.
func TestEndToEnd(t *testing.T) {
	dev := startDevCA(t)
	root := t.TempDir()
	dirs := map[string]string{}
	for _, n := range []string{"svc", "w1", "w2", "w3", "foreign"} {
		dirs[n] = filepath.Join(root, n)
	}
	enroll(t, dev, "default", "svc", dirs["svc"])
	w1 := enroll(t, dev, "default", "w1", dirs["w1"])
	enroll(t, dev, "ci", "w2", dirs["w2"])
	enroll(t, dev, "default", "w3", dirs["w3"])
	writeForeignWorker(t, dirs["foreign"], filepath.Join(dev.Dir, "root.crt"))
	svc := spiffeid.RequireFromString("spiffe://dev.workerca.test/worker/default/svc")

	s := startService(t, dirs["svc"], "--allow-pool", "default", "--crl-refresh", "1s")

	t.Run("allowed-pool", func(t *testing.T) {
		body, serial, err := hello(t, s, dirs["w1"], svc)
		if err != nil {
			t.Fatal(err)
		}
		if want := "hello spiffe://dev.workerca.test/worker/default/w1\n"; body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		if want := fmt.Sprintf("%x", w1.SerialNumber.Bytes()); serial != want {
			t.Errorf("service saw serial %s, want %s", serial, want)
		}
	})
	t.Run("fail/disallowed-pool", func(t *testing.T) {
		refused(t, s, dirs["w2"], svc, "peer not authorized")
	})
	t.Run("fail/foreign-ca", func(t *testing.T) {
		refused(t, s, dirs["foreign"], svc, "peer certificate not trusted")
	})
	t.Run("fail/client-refuses-wrong-service-id", func(t *testing.T) {
		_, _, err := hello(t, s, dirs["w1"], spiffeid.RequireFromString("spiffe://dev.workerca.test/worker/default/other"))
		if err == nil || !strings.Contains(err.Error(), "peer not authorized") {
			t.Errorf("err = %v, want the client to refuse the service", err)
		}
	})

	// Renewal: new key and certificate in w1's directory, same worker,
	// picked up by the client configuration made before it.
	w1Client := clientConfig(t, dirs["w1"], svc)
	renewed := enroll(t, dev, "default", "w1", dirs["w1"])
	t.Run("hot-reload", func(t *testing.T) {
		_, serial, err := helloWith(t, s, w1Client)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%x", renewed.SerialNumber.Bytes()); serial != want {
			t.Errorf("service saw serial %s, want the renewed %s (old %x)", serial, want, w1.SerialNumber.Bytes())
		}
	})

	t.Run("fail/revoked", func(t *testing.T) {
		dev.Revoke(t, renewed)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, _, err := hello(t, s, dirs["w1"], svc)
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("revoked worker still let in after 10s; service log:\n%s", s.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(s.stderr.String(), "peer certificate revoked") {
			t.Errorf("service log does not say revoked:\n%s", s.stderr)
		}
		if _, _, err := hello(t, s, dirs["w3"], svc); err != nil {
			t.Errorf("another worker of the pool is refused after w1's revocation: %v", err)
		}
	})

	// The CA goes away: no CRL can be fetched by a service that has none.
	dev.Stop(t)
	t.Run("fail/crl-unreachable-fail-closed", func(t *testing.T) {
		closed := startService(t, dirs["svc"], "--allow-pool", "default", "--crl-refresh", "1s")
		refused(t, closed, dirs["w3"], svc, "revocation status unavailable")
	})
	t.Run("crl-unreachable-fail-open", func(t *testing.T) {
		open := startService(t, dirs["svc"], "--allow-pool", "default", "--crl-refresh", "1s", "--fail-open")
		body, _, err := hello(t, open, dirs["w3"], svc)
		if err != nil {
			t.Fatal(err)
		}
		if want := "hello spiffe://dev.workerca.test/worker/default/w3\n"; body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})
}

// writeForeignWorker writes, in the agent layout, a worker certificate
// from a CA the service does not trust (with the right bundle, so the
// worker itself can verify the service).
func writeForeignWorker(t *testing.T, dir, bundleFile string) {
	t.Helper()
	now := time.Now()
	h := catest.NewHierarchy(t, now.Add(-time.Hour))
	key := catest.Key(t, ca.KeyP256)
	leaf := h.Worker(t, key, "default", "w1", now, time.Hour)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.Intermediate.Raw})...)
	bundle, err := os.ReadFile(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	writeAgentFiles(t, dir, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), chain, bundle)
}
