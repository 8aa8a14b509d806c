//go:build tpmsimulator

package agent_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/tpmtest"
)

// startTPMDevCA is a real `workerca dev` with the test manufacturer's
// root configured and a pool "metal" admitting method tpm for any EK
// that chains to it.
func startTPMDevCA(t *testing.T, m *tpmtest.Manufacturer) *devca.CA {
	t.Helper()
	return devca.StartWith(t, workercaBin, devca.TPMPool([]string{m.WriteRoot(t, t.TempDir())}, nil,
		map[string]any{"name": "metal", "methods": []string{"tpm"}, "tpm": map[string]any{"ek": "any"}}))
}

// TestEnrollTPMEndToEnd enrolls the simulator's TPM with a real CA: the EK
// certificate (made by a test manufacturer for the simulator's EK, given
// as a file as some platforms ship it) chains to the configured root, the
// CA activates a credential through the TPM, and the worker then renews
// over mTLS with its TPM key into a new TPM key.
func TestEnrollTPMEndToEnd(t *testing.T) {
	open := simulatorTPM(t)
	m := tpmtest.NewManufacturer(t)
	ca := startTPMDevCA(t, m)
	ek, err := agent.ReadEndorsementKey(t.Context(), agent.TPM{Open: open})
	if err != nil {
		t.Fatal(err)
	}
	ekFile := m.WriteEKCertificate(t, t.TempDir(), ek.Public)
	dir := filepath.Join(t.TempDir(), "worker")
	a, err := agent.New(agent.Config{CAURL: ca.URL, Pin: agent.SPKIPin(ca.Root), Dir: dir, Method: agent.MethodTPM,
		Pool: "metal", TPM: agent.TPM{Open: open, EKCertificateFile: ekFile}})
	if err != nil {
		t.Fatal(err)
	}

	cert, err := a.Enroll(t.Context())
	if err != nil {
		t.Fatalf("Enroll tpm against workerca dev: %v", err)
	}
	if got, want := cert.SPIFFEID(), "spiffe://dev.workerca.test/worker/metal/"+enroll.TPMWorkerID(ek.SHA256); got != want {
		t.Errorf("SPIFFE ID %q, want %q", got, want)
	}
	requireNoFile(t, filepath.Join(dir, agent.FileKey))
	requireMode(t, filepath.Join(dir, agent.FileTPMKey), 0o600)
	first := readKeyRef(t, dir)

	tc, err := agent.LoadCertificate(dir, agent.WithTPMOpener(open))
	if err != nil {
		t.Fatal(err)
	}
	if !tc.Leaf.Equal(cert.Leaf) {
		t.Fatal("LoadCertificate's leaf is not the enrolled certificate")
	}
	digest := sha256.Sum256([]byte("artifact"))
	if _, err := tc.PrivateKey.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("signing with the TPM key: %v", err)
	}

	// Renewal is an mTLS request to the CA authenticated by the TPM key.
	renewed, err := a.Renew(t.Context())
	if err != nil {
		t.Fatalf("Renew over mTLS with the TPM key: %v", err)
	}
	next := readKeyRef(t, dir)
	if next.Key == first.Key || publicEqual(renewed.Leaf.PublicKey, cert.Leaf.PublicKey) {
		t.Errorf("renewal kept the TPM key %s", first.Key)
	}
	if renewed.SPIFFEID() != cert.SPIFFEID() {
		t.Errorf("renewed SPIFFE ID %q, want %q", renewed.SPIFFEID(), cert.SPIFFEID())
	}
	if got := storeKeys(t, dir); len(got) != 1 || got[0] != next.Key {
		t.Errorf("TPM store keys %v, want only %s", got, next.Key)
	}
	// The rotated key authenticates the next renewal.
	if _, err := a.Renew(t.Context()); err != nil {
		t.Fatalf("second renewal with the rotated TPM key: %v", err)
	}
}
