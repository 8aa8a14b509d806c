//go:build tpmsimulator

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/tpmtest"
)

// simulatorTPM opens the in-process TPM simulator for the test and
// returns an opener over it (one simulator per process: see tpmtest).
func simulatorTPM(t *testing.T) agent.TPMOpener {
	t.Helper()
	return tpmtest.Opener(tpmtest.OpenSimulator(t))
}

// TestTPMEK prints the hash an operator registers: the SHA-256 of the RSA
// EK's PKIX DER, and that the simulator holds no EK certificate.
func TestTPMEK(t *testing.T) {
	open := simulatorTPM(t)
	ek, err := agent.ReadEndorsementKey(t.Context(), agent.TPM{Open: open})
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cliTPM(t, open, "tpm", "ek")
	if code != exitOK {
		t.Fatalf("tpm ek: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"ek-sha256 " + ek.SHA256 + "\n", "ek-certificate absent", "workerca tpm register --ek-sha256 " + ek.SHA256} {
		if !strings.Contains(stdout, want) {
			t.Errorf("tpm ek printed %q, want it to contain %q", stdout, want)
		}
	}
	code, stdout, _ = cliTPM(t, open, "tpm", "ek", "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); code != exitOK || err != nil {
		t.Fatalf("tpm ek --json: exit %d, %q: %v", code, stdout, err)
	}
	if got["ek_sha256"] != ek.SHA256 || got["ek_certificate"] != false {
		t.Errorf("tpm ek --json = %v", got)
	}
}

// TestEnrollTPMCommand enrolls the simulator's TPM with a real CA from the
// command line: the EK certificate comes from --ek-certificate, the key
// stays in the TPM, and key.tpm.json replaces key.pem.
func TestEnrollTPMCommand(t *testing.T) {
	open := simulatorTPM(t)
	m := tpmtest.NewManufacturer(t)
	ca := devca.StartWith(t, workercaBin, devca.TPMPool([]string{m.WriteRoot(t, t.TempDir())}, nil,
		map[string]any{"name": "metal", "methods": []string{"tpm"}}))
	ek, err := agent.ReadEndorsementKey(t.Context(), agent.TPM{Open: open})
	if err != nil {
		t.Fatal(err)
	}
	ekFile := m.WriteEKCertificate(t, t.TempDir(), ek.Public)
	dir := filepath.Join(t.TempDir(), "w")
	code, stdout, stderr := cliTPM(t, open, "enroll", "--ca", ca.URL, "--ca-pin", agent.SPKIPin(ca.Root), "--out", dir,
		"--method", "tpm", "--pool", "metal", "--ek-certificate", ekFile)
	if code != exitOK {
		t.Fatalf("enroll --method tpm: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "enrolled spiffe://dev.workerca.test/worker/metal/ek-") {
		t.Errorf("enroll printed %q", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, agent.FileKey)); !os.IsNotExist(err) {
		t.Errorf("key.pem written by a TPM enrollment (stat: %v)", err)
	}
	if _, err := agent.LoadCertificate(dir, agent.WithTPMOpener(open)); err != nil {
		t.Errorf("LoadCertificate after the command: %v", err)
	}
}
