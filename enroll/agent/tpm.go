package agent

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.step.sm/crypto/tpm"
	"go.step.sm/crypto/tpm/storage"

	"github.com/workerca/workerca/enroll/tpmwire"
)

// TPM names the TPM that holds the worker key (method tpm) and says how
// to open it.
type TPM struct {
	// Device is the TPM to use: empty for the platform's TPM (on Linux
	// the first under /sys/class/tpm, through its kernel resource manager
	// /dev/tpmrmN when it has one), or the UNIX socket of a software TPM
	// (swtpm, the Microsoft reference simulator). go-attestation finds
	// the platform's TPM itself: another device path is not honoured for
	// attestation. It is recorded in key.tpm.json, so renewals and
	// LoadCertificate use the same TPM.
	Device string
	// EKCertificateFile, when set, holds the EK certificate (DER or PEM)
	// to send instead of what the TPM's NV memory holds: for platforms
	// that ship it as a file. Its public key must be the TPM's RSA EK.
	EKCertificateFile string
	// Open opens the TPM; default OpenTPM. Tests give one over the
	// in-process simulator.
	Open TPMOpener
}

// TPMOpener returns a handle on the TPM named by device (see TPM.Device)
// that keeps its objects (the TPM-wrapped blobs of AKs and keys) in store.
// The handle opens the device for each operation, not at once.
type TPMOpener func(device string, store storage.TPMStore) (*tpm.TPM, error)

// OpenTPM is the default TPMOpener: the real TPM, never downloading an EK
// certificate from the manufacturer (give TPM.EKCertificateFile, or have
// the operator register the EK's hash, instead).
func OpenTPM(device string, store storage.TPMStore) (*tpm.TPM, error) {
	t, err := tpm.New(tpm.WithDeviceName(device), tpm.WithStore(store), tpm.WithDisableDownload())
	if err != nil {
		return nil, fmt.Errorf("agent: TPM: %w", err)
	}
	return t, nil
}

// Names in the agent directory for a TPM enrollment.
const (
	// FileTPMKey replaces key.pem when the worker key lives in a TPM:
	// JSON naming the key, mode 0600:
	//
	//	{"device": "", "store": "tpm", "ak": "workerca", "key": "workerca-5f0c..."}
	//
	// device is TPM.Device ("" for the platform's TPM); store is the
	// directory of the TPM's object blobs, relative to the agent
	// directory unless absolute; ak and key name the attestation key and
	// the worker key in that store. Nothing in it or in the store is
	// usable without the TPM that wrapped it.
	FileTPMKey = "key.tpm.json"
	// DirTPMStore is the store directory the agent makes (0700, blobs
	// 0600).
	DirTPMStore = "tpm"
	// fileTPMKeyNext holds a new key reference until its certificate is
	// in place.
	fileTPMKeyNext = "key.tpm.json.next"
	// tpmAKName is the one attestation key the agent makes and reuses.
	tpmAKName = "workerca"
)

// tpmKeyRef is the content of key.tpm.json.
type tpmKeyRef struct {
	Device string `json:"device"`
	Store  string `json:"store"`
	AK     string `json:"ak"`
	Key    string `json:"key"`
}

// storeDir is ref.Store resolved against the agent directory.
func (r tpmKeyRef) storeDir(dir string) string {
	if filepath.IsAbs(r.Store) {
		return r.Store
	}
	return filepath.Join(dir, r.Store)
}

func parseTPMKeyRef(b []byte) (tpmKeyRef, error) {
	var r tpmKeyRef
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("agent: %s: %w", FileTPMKey, err)
	}
	if r.Store == "" || r.Key == "" || r.AK == "" {
		return r, fmt.Errorf("agent: %s must name a store, an AK and a key", FileTPMKey)
	}
	return r, nil
}

// tpmSigner is a crypto.Signer over a TPM key (each Sign loads the key
// into the TPM), with the reference that names it.
type tpmSigner struct {
	crypto.Signer
	ref tpmKeyRef
}

// privateStore is the library's directory store with the directory made
// 0700 and the blobs set to 0600 after each write (diskv writes them 0666
// less the umask, inside the 0700 directory). Its read cache is off: the agent and LoadCertificate
// callers open the same directory through different handles.
type privateStore struct {
	*storage.Dirstore
	dir string
}

func newPrivateStore(dir string) (*privateStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: TPM store: %w", err)
	}
	return &privateStore{Dirstore: storage.NewDirstore(dir, storage.WithCacheSize(0)), dir: dir}, nil
}

// tighten sets every file of the store to 0600.
func (s *privateStore) tighten(err error) error {
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("agent: TPM store: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Chmod(filepath.Join(s.dir, e.Name()), 0o600); err != nil {
				return fmt.Errorf("agent: TPM store: %w", err)
			}
		}
	}
	return nil
}

func (s *privateStore) AddKey(k *storage.Key) error    { return s.tighten(s.Dirstore.AddKey(k)) }
func (s *privateStore) UpdateKey(k *storage.Key) error { return s.tighten(s.Dirstore.UpdateKey(k)) }
func (s *privateStore) AddAK(k *storage.AK) error      { return s.tighten(s.Dirstore.AddAK(k)) }
func (s *privateStore) UpdateAK(k *storage.AK) error   { return s.tighten(s.Dirstore.UpdateAK(k)) }

// openTPM opens the TPM of ref's device with ref's store.
func openTPM(open TPMOpener, dir string, ref tpmKeyRef) (*tpm.TPM, error) {
	st, err := newPrivateStore(ref.storeDir(dir))
	if err != nil {
		return nil, err
	}
	t, err := open(ref.Device, st)
	if err != nil {
		return nil, fmt.Errorf("agent: opening the TPM: %w", err)
	}
	return t, nil
}

// tpmKeySigner returns the signer of the key ref names.
func tpmKeySigner(ctx context.Context, open TPMOpener, dir string, ref tpmKeyRef) (*tpmSigner, error) {
	t, err := openTPM(open, dir, ref)
	if err != nil {
		return nil, err
	}
	s, err := t.GetSigner(ctx, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("agent: TPM key %q: %w", ref.Key, err)
	}
	return &tpmSigner{Signer: s, ref: ref}, nil
}

// LoadOption is an optional setting of LoadCertificate.
type LoadOption func(*loadOptions)

type loadOptions struct {
	open TPMOpener
}

// WithTPMOpener makes LoadCertificate open the TPM of a TPM enrollment
// with open instead of OpenTPM (a test's simulator).
func WithTPMOpener(open TPMOpener) LoadOption {
	return func(o *loadOptions) {
		if open != nil {
			o.open = open
		}
	}
}

// tpmPair is the chain with the TPM key that refFile (key.tpm.json or its
// .next) names, if that key is the leaf's.
func tpmPair(dir string, refJSON, chainPEM []byte, o loadOptions) (*tls.Certificate, error) {
	ref, err := parseTPMKeyRef(refJSON)
	if err != nil {
		return nil, err
	}
	chain, err := parseCerts(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", FileChain, err)
	}
	s, err := tpmKeySigner(context.Background(), o.open, dir, ref)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(s.Public(), chain[0].PublicKey) {
		return nil, errors.New("agent: the TPM key does not match the certificate in " + FileChain)
	}
	tc := &tls.Certificate{PrivateKey: s, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc, nil
}

func publicKeyEqual(a crypto.PublicKey, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pk, ok := a.(equaler)
	return ok && pk.Equal(b)
}

// EndorsementKey describes a TPM's endorsement key, as `workerca-agent
// tpm ek` prints it.
type EndorsementKey struct {
	// Public is the EK public key (the RSA EK, which credential
	// activation uses).
	Public crypto.PublicKey
	// SHA256 is the lowercase hex SHA-256 of Public's PKIX DER: what an
	// operator registers with `workerca tpm register --ek-sha256`.
	SHA256 string
	// Certificate is the EK certificate the TPM holds, or nil.
	Certificate *x509.Certificate
}

// ReadEndorsementKey reads the RSA EK of the TPM named by cfg.
func ReadEndorsementKey(ctx context.Context, cfg TPM) (*EndorsementKey, error) {
	if cfg.Open == nil {
		cfg.Open = OpenTPM
	}
	t, err := cfg.Open(cfg.Device, storage.BlackHole())
	if err != nil {
		return nil, fmt.Errorf("agent: opening the TPM: %w; %s", err, tpmAdvice)
	}
	ek, err := endorsementKey(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("%w; %s", err, tpmAdvice)
	}
	return ek, nil
}

// endorsementKey picks the TPM's RSA EK: go-attestation activates
// credentials with it.
func endorsementKey(ctx context.Context, t *tpm.TPM) (*EndorsementKey, error) {
	eks, err := t.GetEKs(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent: reading the TPM's endorsement keys: %w", err)
	}
	for _, ek := range eks {
		if _, ok := ek.Public().(*rsa.PublicKey); !ok {
			continue
		}
		sum, err := tpmwire.EKSHA256(ek.Public())
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		return &EndorsementKey{Public: ek.Public(), SHA256: sum, Certificate: ek.Certificate()}, nil
	}
	return nil, errors.New("agent: the TPM has no RSA endorsement key")
}

// wireEK is what the first round sends for ek: the certificate from
// TPM.EKCertificateFile, else the TPM's, else the public key.
func (a *Agent) wireEK(ek *EndorsementKey) (tpmwire.EK, error) {
	if f := a.cfg.TPM.EKCertificateFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return tpmwire.EK{}, permanent(fmt.Errorf("agent: EK certificate: %w", err), "")
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return tpmwire.EK{}, permanent(fmt.Errorf("agent: EK certificate %s: %w", f, err), "")
		}
		if !publicKeyEqual(ek.Public, c.PublicKey) {
			return tpmwire.EK{}, permanent(fmt.Errorf("agent: the EK certificate %s is not for this TPM's RSA EK (sha256 %s)", f, ek.SHA256), "")
		}
		return tpmwire.EK{Certificate: c.Raw}, nil
	}
	if ek.Certificate != nil {
		return tpmwire.EK{Certificate: ek.Certificate.Raw}, nil
	}
	der, err := x509.MarshalPKIXPublicKey(ek.Public)
	if err != nil {
		return tpmwire.EK{}, fmt.Errorf("agent: EK public key: %w", err)
	}
	return tpmwire.EK{Public: der}, nil
}

// tpmKeyName is a fresh name for a worker key in the store.
func tpmKeyName(r io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	return "workerca-" + hex.EncodeToString(b[:]), nil
}

// attestationKey returns the agent's AK in t, made on first use.
func attestationKey(ctx context.Context, t *tpm.TPM) (*tpm.AK, error) {
	ak, err := t.GetAK(ctx, tpmAKName)
	if errors.Is(err, tpm.ErrNotFound) {
		ak, err = t.CreateAK(ctx, tpmAKName)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: TPM attestation key: %w", err)
	}
	return ak, nil
}

// newTPMKey makes a P-256 key in t, certified by the AK ref names
// (TPM2_Certify), and a PEM CSR signed by it: what both the enrollment's
// first round and a renewal send. On error the key is already deleted.
func (a *Agent) newTPMKey(ctx context.Context, t *tpm.TPM, ref tpmKeyRef) (*tpmSigner, []byte, tpmwire.Certify, error) {
	name, err := tpmKeyName(a.cfg.Rand)
	if err != nil {
		return nil, nil, tpmwire.Certify{}, err
	}
	k, err := t.AttestKey(ctx, ref.AK, name, tpm.AttestKeyConfig{Algorithm: "ECDSA", Size: 256})
	if err != nil {
		return nil, nil, tpmwire.Certify{}, fmt.Errorf("agent: making a key in the TPM: %w", err)
	}
	ref.Key = name
	key := &tpmSigner{ref: ref}
	csr, certify, err := a.certifyTPMKey(ctx, k, key)
	if err != nil {
		a.dropTPMKey(ctx, key)
		return nil, nil, tpmwire.Certify{}, err
	}
	return key, csr, certify, nil
}

// certifyTPMKey sets key's signer to k's, and returns a CSR signed by it
// and k's certification by the AK.
func (a *Agent) certifyTPMKey(ctx context.Context, k *tpm.Key, key *tpmSigner) ([]byte, tpmwire.Certify, error) {
	s, err := k.Signer(ctx)
	if err != nil {
		return nil, tpmwire.Certify{}, fmt.Errorf("agent: TPM key %q: %w", key.ref.Key, err)
	}
	key.Signer = s
	cp, err := k.CertificationParameters(ctx)
	if err != nil {
		return nil, tpmwire.Certify{}, fmt.Errorf("agent: TPM key certification: %w", err)
	}
	csr, err := a.csrFor(key)
	if err != nil {
		return nil, tpmwire.Certify{}, err
	}
	return csr, tpmwire.Certify{Public: cp.Public, Attest: cp.CreateAttestation, Signature: cp.CreateSignature}, nil
}

// dropTPMKey deletes key from its TPM store when it is a TPM key: a key
// the CA did not certify, or one a new certificate superseded. A failure
// is logged: the blob is useless without its certificate.
func (a *Agent) dropTPMKey(ctx context.Context, key crypto.Signer) {
	ts, ok := key.(*tpmSigner)
	if !ok {
		return
	}
	t, err := openTPM(a.cfg.TPM.Open, a.cfg.Dir, ts.ref)
	if err == nil {
		err = t.DeleteKey(ctx, ts.ref.Key)
	}
	if err != nil && !errors.Is(err, tpm.ErrNotFound) {
		a.log.WarnContext(ctx, "deleting a TPM key failed", "key", ts.ref.Key, "error", err)
	}
}
