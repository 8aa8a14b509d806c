package main

import (
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/syncbuf"
	"github.com/workerca/workerca/internal/tooltest"
)

// swtpm is a software TPM 2.0 (swtpm, as QEMU uses) in its own process,
// manufactured by swtpm_setup with an EK certificate from swtpm's local
// CA, which stands for a TPM manufacturer: a TPM the agent reaches as it
// reaches any TPM, through a command channel (here a UNIX socket).
type swtpm struct {
	// Socket is the TPM's command socket: --tpm-device.
	Socket string
	// Root and Issuer are the local CA's root and issuing certificates
	// (PEM files): the manufacturer roots and intermediates to configure.
	Root, Issuer string
}

// startSwtpm manufactures and starts a software TPM for the test; the
// test's cleanup stops it. swtpm and swtpm_setup must be installed
// (Debian: swtpm, swtpm-tools; .ci/run installs them).
func startSwtpm(t *testing.T) *swtpm {
	t.Helper()
	tools := tooltest.Require(t, "swtpm", "swtpm_setup", "swtpm_localca")
	dir := t.TempDir()
	caDir, state := filepath.Join(dir, "localca"), filepath.Join(dir, "state")
	for _, d := range []string{caDir, state} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The local CA's files live in the test's directory, not in
	// /var/lib/swtpm-localca.
	caConf := write("swtpm-localca.conf", fmt.Sprintf("statedir = %[1]s\nsigningkey = %[1]s/signkey.pem\nissuercert = %[1]s/issuercert.pem\ncertserial = %[1]s/certserial\n", caDir))
	caOpts := write("swtpm-localca.options", "--tpm-manufacturer IBM\n--tpm-model swtpm-libtpms\n--tpm-version 2\n")
	setupConf := write("swtpm_setup.conf", fmt.Sprintf("create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha256\n", tools[2], caConf, caOpts))
	out, err := exec.Command(tools[1], "--tpm2", "--tpmstate", state, "--create-ek-cert", "--overwrite", "--config", setupConf).CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	s := &swtpm{Socket: filepath.Join(dir, "tpm.sock"), Root: filepath.Join(caDir, "swtpm-localca-rootca-cert.pem"), Issuer: filepath.Join(caDir, "issuercert.pem")}
	var logs syncbuf.Buffer
	cmd := exec.Command(tools[0], "socket", "--tpm2", "--tpmstate", "dir="+state, "--flags", "startup-clear",
		"--server", "type=unixio,path="+s.Socket, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(s.Socket); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("swtpm did not open %s: %s", s.Socket, logs.String())
		}
	}
	return s
}

// TestEnrollSwtpm is the TPM section of docs/enrollment.md followed with
// a TPM in another process: swtpm, manufactured with an EK certificate by
// its local CA, whose certificates the CA is configured with as
// manufacturer roots. `tpm ek` reads the EK and its certificate;
// `enroll --method tpm --tpm-device` runs both rounds against a real
// `workerca dev`; the worker then renews over mTLS with its TPM key into
// a new TPM key, with the certification the CA checks.
func TestEnrollSwtpm(t *testing.T) {
	tpm := startSwtpm(t)
	ca := devca.StartWith(t, workercaBin, devca.TPMPool([]string{tpm.Root}, []string{tpm.Issuer},
		map[string]any{"name": "metal", "methods": []string{"tpm"}, "tpm": map[string]any{"ek": "certificate"}}))
	cli := func(args ...string) (int, string, string) { return cliTPM(t, agent.OpenTPM, args...) }

	code, stdout, stderr := cli("tpm", "ek", "--tpm-device", tpm.Socket, "--json")
	var ek struct {
		SHA256 string `json:"ek_sha256"`
		Cert   bool   `json:"ek_certificate"`
		Issuer string `json:"ek_certificate_issuer"`
	}
	if err := json.Unmarshal([]byte(stdout), &ek); code != exitOK || err != nil {
		t.Fatalf("tpm ek: exit %d, %q, %v: %s", code, stdout, err, stderr)
	}
	if len(ek.SHA256) != 64 || !ek.Cert || !strings.Contains(ek.Issuer, "swtpm-localca") {
		t.Fatalf("tpm ek = %+v; want swtpm's EK with its local CA's certificate", ek)
	}

	dir := filepath.Join(t.TempDir(), "worker")
	code, stdout, stderr = cli("enroll", "--method", "tpm", "--tpm-device", tpm.Socket, "--pool", "metal",
		"--ca", ca.URL, "--ca-pin", agent.SPKIPin(ca.Root), "--out", dir)
	want := "spiffe://dev.workerca.test/worker/metal/" + enroll.TPMWorkerID(ek.SHA256)
	if code != exitOK || !strings.Contains(stdout, "enrolled "+want) {
		t.Fatalf("enroll: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, agent.FileKey)); !os.IsNotExist(err) {
		t.Errorf("%s exists after a TPM enrollment (%v)", agent.FileKey, err)
	}

	a, err := agent.New(agent.Config{CAURL: ca.URL, Dir: dir, Method: agent.MethodTPM, Pool: "metal", TPM: agent.TPM{Device: tpm.Socket}})
	if err != nil {
		t.Fatal(err)
	}
	before, err := agent.LoadCertificate(dir)
	if err != nil {
		t.Fatalf("LoadCertificate with the swtpm key: %v", err)
	}
	renewed, err := a.Renew(t.Context())
	if err != nil {
		t.Fatalf("renewal over mTLS with the swtpm key: %v", err)
	}
	if renewed.SPIFFEID() != want || publicKeysEqual(renewed.Leaf.PublicKey, before.Leaf.PublicKey) {
		t.Fatalf("renewed %s with the same key %v; want %s with a new TPM key", renewed.SPIFFEID(),
			publicKeysEqual(renewed.Leaf.PublicKey, before.Leaf.PublicKey), want)
	}
}

// publicKeysEqual reports whether two public keys are the same key.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
