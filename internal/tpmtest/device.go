//go:build tpmsimulator

package tpmtest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"sync"
	"testing"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/tpmutil"
	"go.step.sm/crypto/tpm"
	"go.step.sm/crypto/tpm/simulator"
	"go.step.sm/crypto/tpm/storage"

	"github.com/workerca/workerca/enroll/tpmwire"
)

// simMu serializes simulators: the reference TPM is one per process.
var simMu sync.Mutex

// Device is a simulated TPM 2.0 (the Microsoft reference TPM through
// go.step.sm/crypto/tpm/simulator) with go.step.sm/crypto/tpm over it, as
// the agent uses a real one. Its EK is RSA and has no certificate. Only
// one Device may be open at a time: OpenDevice waits for the previous
// test's to close.
type Device struct {
	// Sim is the simulator: the TPM's command channel, usable with
	// go-tpm directly between calls through TPM.
	Sim simulator.Simulator
	// TPM is the go.step.sm/crypto/tpm instance over Sim.
	TPM *tpm.TPM
	// EK is the endorsement key.
	EK *tpm.EK
}

// OpenSimulator starts a fresh simulator for the test, waiting for the
// previous test's to close (one per process); the test's cleanup closes
// it.
func OpenSimulator(t testing.TB) simulator.Simulator {
	t.Helper()
	simMu.Lock()
	sim, err := simulator.New()
	if err != nil {
		simMu.Unlock()
		t.Fatal(err)
	}
	if err := sim.Open(); err != nil {
		simMu.Unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("closing the TPM simulator: %v", err)
		}
		simMu.Unlock()
	})
	return sim
}

// Opener opens go.step.sm/crypto/tpm over sim with the given key store:
// the shape of agent.TPMOpener (the device name is not used).
func Opener(sim simulator.Simulator) func(device string, store storage.TPMStore) (*tpm.TPM, error) {
	return func(_ string, store storage.TPMStore) (*tpm.TPM, error) {
		return tpm.New(tpm.WithSimulator(sim), tpm.WithStore(store))
	}
}

// OpenDevice starts a fresh simulator (OpenSimulator) with its key
// storage in a temporary directory.
func OpenDevice(t testing.TB) *Device {
	t.Helper()
	sim := OpenSimulator(t)
	d := &Device{Sim: sim}
	var err error
	if d.TPM, err = Opener(sim)("", storage.NewDirstore(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	eks, err := d.TPM.GetEKs(context.Background())
	if err != nil || len(eks) == 0 {
		t.Fatalf("GetEKs = %d, %v", len(eks), err)
	}
	d.EK = eks[0]
	return d
}

// EKPublic is the EK public key's PKIX DER.
func (d *Device) EKPublic(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(d.EK.Public())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// NewAK creates an attestation key.
func (d *Device) NewAK(t testing.TB, name string) *tpm.AK {
	t.Helper()
	ak, err := d.TPM.CreateAK(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ak
}

// NewKey creates an ECDSA P-256 key in the TPM, certified by ak
// (TPM2_Certify), as the agent's worker key.
func (d *Device) NewKey(t testing.TB, ak *tpm.AK, name string) *tpm.Key {
	t.Helper()
	k, err := d.TPM.AttestKey(context.Background(), ak.Name(), name, tpm.AttestKeyConfig{Algorithm: "ECDSA", Size: 256})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// CSR is a PEM certificate request signed by the TPM key.
func (d *Device) CSR(t testing.TB, k *tpm.Key) string {
	t.Helper()
	signer, err := k.Signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return CSRWith(t, signer)
}

// CSRWith is a PEM certificate request signed by any key.
func CSRWith(t testing.TB, signer crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// AKWire is the AK's attestation parameters as the first round sends
// them.
func (d *Device) AKWire(t testing.TB, ak *tpm.AK) tpmwire.AK {
	t.Helper()
	p, err := ak.AttestationParameters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tpmwire.AK{Public: p.Public, CreateData: p.CreateData, CreateAttestation: p.CreateAttestation, CreateSignature: p.CreateSignature}
}

// CertifyWire is the key's TPM2_Certify by its AK as the first round
// sends it.
func (d *Device) CertifyWire(t testing.TB, k *tpm.Key) tpmwire.Certify {
	t.Helper()
	p, err := k.CertificationParameters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tpmwire.Certify{Public: p.Public, Attest: p.CreateAttestation, Signature: p.CreateSignature}
}

// Start is a complete, honest first round for key k certified by ak,
// with the EK as a public key (the simulator has no EK certificate).
func (d *Device) Start(t testing.TB, ak *tpm.AK, k *tpm.Key) tpmwire.StartRequest {
	t.Helper()
	return tpmwire.StartRequest{
		CSR: d.CSR(t, k), EK: tpmwire.EK{Public: d.EKPublic(t)}, AK: d.AKWire(t, ak), Certify: d.CertifyWire(t, k),
	}
}

// Activate runs TPM2_ActivateCredential with ak on the credential of the
// first round's answer.
func (d *Device) Activate(t testing.TB, ak *tpm.AK, c tpmwire.Credential) ([]byte, error) {
	t.Helper()
	return ak.ActivateCredential(context.Background(), tpm.EncryptedCredential{Credential: c.CredentialBlob, Secret: c.EncryptedSecret})
}

// srkHandle is the persistent storage root key go-attestation creates
// and parents AKs and keys under.
const srkHandle = tpmutil.Handle(0x81000001)

// ExportableKey creates, with go-tpm directly, an ECDSA P-256 signing key
// that is neither fixedTPM nor fixedParent (it could be duplicated out of
// the TPM), has ak certify it with TPM2_Certify, and returns the
// certification and a signer over the key (for its CSR). It is what a
// host trying to pass an exportable key off as TPM-bound would send.
func (d *Device) ExportableKey(t testing.TB, ak *tpm.AK) (tpmwire.Certify, crypto.Signer) {
	t.Helper()
	ctx := context.Background()
	// Load the AK through go.step.sm first so that go-attestation has
	// made the SRK.
	blobs, err := ak.Blobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	akPriv, err := blobs.Private()
	if err != nil {
		t.Fatal(err)
	}
	akPub, err := blobs.Public()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := tpm2.Public{
		Type:       tpm2.AlgECC,
		NameAlg:    tpm2.AlgSHA256,
		Attributes: tpm2.FlagSign | tpm2.FlagSensitiveDataOrigin | tpm2.FlagUserWithAuth,
		ECCParameters: &tpm2.ECCParams{
			Sign:    &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256},
			CurveID: tpm2.CurveNISTP256,
		},
	}
	priv, pub, _, _, _, err := tpm2.CreateKey(d.Sim, srkHandle, tpm2.PCRSelection{}, "", "", tmpl)
	if err != nil {
		t.Fatalf("creating the exportable key: %v", err)
	}
	kh, _, err := tpm2.Load(d.Sim, srkHandle, "", pub, priv)
	if err != nil {
		t.Fatalf("loading the exportable key: %v", err)
	}
	t.Cleanup(func() { _ = tpm2.FlushContext(d.Sim, kh) })
	// The blobs carry tpm2-tools' 2-byte size prefix.
	akh, _, err := tpm2.Load(d.Sim, srkHandle, "", akPub[2:], akPriv[2:])
	if err != nil {
		t.Fatalf("loading the AK: %v", err)
	}
	defer tpm2.FlushContext(d.Sim, akh)
	att, sig, err := tpm2.CertifyEx(d.Sim, "", "", kh, akh, nil, tpm2.SigScheme{Alg: tpm2.AlgRSASSA, Hash: tpm2.AlgSHA256})
	if err != nil {
		t.Fatalf("certifying the exportable key: %v", err)
	}
	decoded, err := tpm2.DecodePublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Attributes&(tpm2.FlagFixedTPM|tpm2.FlagFixedParent) != 0 {
		t.Fatalf("exportable key has attributes 0x%x", decoded.Attributes)
	}
	key, err := decoded.Key()
	if err != nil {
		t.Fatal(err)
	}
	return tpmwire.Certify{Public: pub, Attest: att, Signature: sig}, &handleSigner{rw: d.Sim, h: kh, pub: key}
}

// handleSigner signs with an ECDSA key loaded in the TPM by handle.
type handleSigner struct {
	rw  io.ReadWriter
	h   tpmutil.Handle
	pub crypto.PublicKey
}

func (s *handleSigner) Public() crypto.PublicKey { return s.pub }

func (s *handleSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	sig, err := tpm2.Sign(s.rw, s.h, "", digest, nil, &tpm2.SigScheme{Alg: tpm2.AlgECDSA, Hash: tpm2.AlgSHA256})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{sig.ECC.R, sig.ECC.S})
}
