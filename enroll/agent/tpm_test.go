//go:build tpmsimulator

package agent_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/go-attestation/attest"
	"go.step.sm/crypto/tpm/storage"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/internal/apierror"
	"github.com/workerca/workerca/internal/tpmtest"
	"github.com/workerca/workerca/workertls"
)

// simulatorTPM opens the in-process TPM simulator for the test and
// returns an opener over it (one simulator per process: see tpmtest).
func simulatorTPM(t *testing.T) agent.TPMOpener {
	t.Helper()
	return tpmtest.Opener(tpmtest.OpenSimulator(t))
}

// testCA is a root key and certificate that signs what the test asks.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert}
}

// issue signs tmpl for pub.
func (c *testCA) issue(t *testing.T, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	tmpl.SerialNumber = serial
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// tpmCA is a stand-in CA for the TPM rounds and renewal: it checks a
// start request as the server must (the AK's properties and creation,
// TPM2_Certify of the CSR key by the AK, the CSR's signature), makes the
// credential to the EK with go-attestation, and issues only for the
// activated secret. Renewal needs mTLS with the last certificate issued.
type tpmCA struct {
	t      *testing.T
	ca     *testCA
	srv    *httptest.Server
	mu     sync.Mutex
	sess   map[string]tpmSession
	starts []tpmwire.StartRequest
	issued []*x509.Certificate
	// renewPeers are the client certificates that renewals presented.
	renewPeers []*x509.Certificate
	// refuse maps "finish" or "renew" to the error code it answers.
	refuse map[string]string
}

type tpmSession struct {
	secret []byte
	pub    crypto.PublicKey
}

func startTPMCA(t *testing.T) *tpmCA {
	t.Helper()
	c := &tpmCA{t: t, ca: newTestCA(t, "tpm test root"), sess: map[string]tpmSession{}, refuse: map[string]string{}}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvCert := c.ca.issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "ca"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, srvKey.Public())
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey, Leaf: srvCert}},
		ClientAuth:   tls.RequestClientCert,
	}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *tpmCA) url() string { return c.srv.URL }

func (c *tpmCA) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apierror.Body{Error: apierror.Detail{Code: code, Message: msg}})
}

func (c *tpmCA) serve(w http.ResponseWriter, r *http.Request) {
	switch r.Method + " " + r.URL.Path {
	case "GET /v1/bundle":
		_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.ca.cert.Raw})
	case "POST " + tpmwire.StartPath:
		c.start(w, r)
	case "POST " + tpmwire.FinishPath:
		c.finish(w, r)
	case "POST /v1/renew":
		c.renew(w, r)
	case "GET /whoami": // the client certificate's serial
		if len(r.TLS.PeerCertificates) == 0 {
			c.fail(w, 401, "no_client_certificate", "")
			return
		}
		_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].SerialNumber.Text(16)))
	default:
		http.NotFound(w, r)
	}
}

func (c *tpmCA) start(w http.ResponseWriter, r *http.Request) {
	var req tpmwire.StartRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		c.fail(w, 400, "malformed", err.Error())
		return
	}
	c.mu.Lock()
	c.starts = append(c.starts, req)
	c.mu.Unlock()
	pub, secret, cred, err := checkStart(req)
	if err != nil {
		c.fail(w, 403, "attestation_failed", err.Error())
		return
	}
	sess := tpmwire.SessionPrefix + rand.Text()
	c.mu.Lock()
	c.sess[sess] = tpmSession{secret: secret, pub: pub}
	c.mu.Unlock()
	_ = json.NewEncoder(w).Encode(tpmwire.StartResponse{
		Session: sess, ExpiresAt: time.Now().Add(tpmwire.SessionTTL),
		Credential: tpmwire.Credential{CredentialBlob: cred.Credential, EncryptedSecret: cred.Secret},
	})
}

// checkStart is the server's side of the first round, with go-attestation:
// it returns the certified key, the secret and its credential.
func checkStart(req tpmwire.StartRequest) (crypto.PublicKey, []byte, *attest.EncryptedCredential, error) {
	var ekPub crypto.PublicKey
	switch {
	case len(req.EK.Certificate) > 0:
		c, err := attest.ParseEKCertificate(req.EK.Certificate)
		if err != nil {
			return nil, nil, nil, err
		}
		ekPub = c.PublicKey
	default:
		p, err := x509.ParsePKIXPublicKey(req.EK.Public)
		if err != nil {
			return nil, nil, nil, err
		}
		ekPub = p
	}
	ap := attest.AttestationParameters{Public: req.AK.Public, CreateData: req.AK.CreateData,
		CreateAttestation: req.AK.CreateAttestation, CreateSignature: req.AK.CreateSignature}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := verifyCertify(ap.Public, &req.Certify, csr.PublicKey); err != nil {
		return nil, nil, nil, err
	}
	// Generate checks the AK: a restricted signing key made in the TPM
	// (its creation data and certification by itself).
	secret, cred, err := (&attest.ActivationParameters{TPMVersion: attest.TPMVersion20, EK: ekPub, AK: ap}).Generate()
	if err != nil {
		return nil, nil, nil, err
	}
	return csr.PublicKey, secret, cred, nil
}

func (c *tpmCA) leafFor(pub crypto.PublicKey) *x509.Certificate {
	u, _ := url.Parse("spiffe://test.example/worker/metal/tpm-host")
	return c.ca.issue(c.t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "tpm-host"}, URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, pub)
}

func (c *tpmCA) answer(w http.ResponseWriter, leaf *x509.Certificate) {
	c.mu.Lock()
	c.issued = append(c.issued, leaf)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		"chain":       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
	})
}

func (c *tpmCA) finish(w http.ResponseWriter, r *http.Request) {
	var req tpmwire.FinishRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		c.fail(w, 400, "malformed", err.Error())
		return
	}
	c.mu.Lock()
	s, ok := c.sess[req.Session]
	delete(c.sess, req.Session)
	refuse := c.refuse["finish"]
	c.mu.Unlock()
	switch {
	case !ok:
		c.fail(w, 403, "session_unknown", "no such session")
	case subtle.ConstantTimeCompare(s.secret, req.Secret) != 1:
		c.fail(w, 403, "activation_failed", "wrong secret")
	case refuse != "":
		c.fail(w, 403, refuse, "refused by the test")
	default:
		c.answer(w, c.leafFor(s.pub))
	}
}

func (c *tpmCA) renew(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	refuse := c.refuse["renew"]
	last := c.issued[len(c.issued)-1]
	c.mu.Unlock()
	if len(r.TLS.PeerCertificates) == 0 || !r.TLS.PeerCertificates[0].Equal(last) {
		c.fail(w, 401, "certificate_unknown", "renew with the last certificate issued")
		return
	}
	c.mu.Lock()
	c.renewPeers = append(c.renewPeers, r.TLS.PeerCertificates[0])
	c.mu.Unlock()
	if refuse != "" {
		c.fail(w, 403, refuse, "refused by the test")
		return
	}
	var req struct {
		CSR        string           `json:"csr"`
		TPMCertify *tpmwire.Certify `json:"tpm_certify"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		c.fail(w, 400, "malformed", err.Error())
		return
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		c.fail(w, 400, "csr_invalid", err.Error())
		return
	}
	// As the CA does: the new key is certified by the enrollment's AK.
	c.mu.Lock()
	akPublic := c.starts[len(c.starts)-1].AK.Public
	c.mu.Unlock()
	if err := verifyCertify(akPublic, req.TPMCertify, csr.PublicKey); err != nil {
		c.fail(w, 401, "attestation_invalid", err.Error())
		return
	}
	c.answer(w, c.leafFor(csr.PublicKey))
}

// setRefuse makes op ("finish" or "renew") answer code; "" accepts again.
func (c *tpmCA) setRefuse(op, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse[op] = code
}

func (c *tpmCA) lastStart() tpmwire.StartRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts[len(c.starts)-1]
}

func (c *tpmCA) startCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.starts)
}

func (c *tpmCA) peers() []*x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*x509.Certificate(nil), c.renewPeers...)
}

// tpmAgent is an agent with method tpm on the simulator for ca.
func tpmAgent(t *testing.T, ca *tpmCA, open agent.TPMOpener, dir string, mod func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.Config{CAURL: ca.url(), Pin: agent.SPKIPin(ca.ca.cert), Dir: dir, Method: agent.MethodTPM,
		TPM: agent.TPM{Open: open}}
	if mod != nil {
		mod(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type keyRef struct {
	Device, Store, AK, Key string
}

func readKeyRef(t *testing.T, dir string) keyRef {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, agent.FileTPMKey))
	if err != nil {
		t.Fatal(err)
	}
	var r keyRef
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", agent.FileTPMKey, err)
	}
	return r
}

// storeKeys lists the key names in the agent's TPM store.
func storeKeys(t *testing.T, dir string) []string {
	t.Helper()
	return storage.NewDirstore(filepath.Join(dir, agent.DirTPMStore)).ListKeyNames()
}

var keyNameRE = regexp.MustCompile(`^workerca-[0-9a-f]{16}$`)

// TestEnrollTPM runs both rounds against a CA that checks them with
// go-attestation, then uses the TPM key for mTLS and artifact signing,
// renews it into a new TPM key and deletes the old one.
func TestEnrollTPM(t *testing.T) {
	open := simulatorTPM(t)
	ca := startTPMCA(t)
	dir := filepath.Join(t.TempDir(), "worker")
	a := tpmAgent(t, ca, open, dir, nil)

	cert, err := a.Enroll(t.Context())
	if err != nil {
		t.Fatalf("Enroll tpm: %v", err)
	}
	var ref keyRef
	t.Run("ok/start-request-speaks-for-this-tpm", func(t *testing.T) {
		ek, err := agent.ReadEndorsementKey(t.Context(), agent.TPM{Open: open})
		if err != nil {
			t.Fatal(err)
		}
		start := ca.lastStart()
		if len(start.EK.Certificate) != 0 || len(start.EK.Intermediates) != 0 {
			t.Error("the simulator has no EK certificate, yet one was sent")
		}
		sum := sha256.Sum256(start.EK.Public)
		if got := hex.EncodeToString(sum[:]); got != ek.SHA256 || ek.Certificate != nil {
			t.Errorf("ek.public hashes to %s, the TPM's RSA EK to %s (certificate %v)", got, ek.SHA256, ek.Certificate != nil)
		}
		if !publicEqual(cert.Leaf.PublicKey, mustCSRKey(t, start.CSR)) {
			t.Error("the certificate is not for the CSR's key")
		}
	})
	t.Run("ok/key-reference-and-no-key-file", func(t *testing.T) {
		requireNoFile(t, filepath.Join(dir, agent.FileKey))
		requireMode(t, filepath.Join(dir, agent.FileTPMKey), 0o600)
		requireMode(t, filepath.Join(dir, agent.DirTPMStore), 0o700)
		entries, _ := os.ReadDir(filepath.Join(dir, agent.DirTPMStore))
		for _, e := range entries {
			requireMode(t, filepath.Join(dir, agent.DirTPMStore, e.Name()), 0o600)
		}
		for _, f := range []string{agent.FileCert, agent.FileChain, agent.FileBundle} {
			requireMode(t, filepath.Join(dir, f), 0o644)
		}
		ref = readKeyRef(t, dir)
		if ref.Store != agent.DirTPMStore || ref.AK != "workerca" || !keyNameRE.MatchString(ref.Key) || ref.Device != "" {
			t.Errorf("%s = %+v", agent.FileTPMKey, ref)
		}
		if got := storeKeys(t, dir); len(got) != 1 || got[0] != ref.Key {
			t.Errorf("TPM store keys %v, want [%s]", got, ref.Key)
		}
		// Nothing PEM-private anywhere in the directory.
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, _ error) error {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a PEM private key", p)
			}
			return nil
		})
	})
	t.Run("ok/load-certificate-signs-in-the-tpm", func(t *testing.T) {
		tc, err := agent.LoadCertificate(dir, agent.WithTPMOpener(open))
		if err != nil {
			t.Fatal(err)
		}
		if !tc.Leaf.Equal(cert.Leaf) {
			t.Fatal("LoadCertificate's leaf is not the enrolled certificate")
		}
		s, ok := tc.PrivateKey.(crypto.Signer)
		if !ok {
			t.Fatalf("PrivateKey is %T, not a crypto.Signer", tc.PrivateKey)
		}
		digest := sha256.Sum256([]byte("job 42 output"))
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(cert.Leaf.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
			t.Error("the TPM signature does not verify with the certificate's key")
		}
		jws, err := artifact.Sign(artifact.Signer{Key: s, Chain: cert.Chain}, artifact.Payload{SHA256: hex.EncodeToString(digest[:]), Name: "out.tar"})
		if err != nil {
			t.Fatalf("artifact.Sign with the TPM key: %v", err)
		}
		if parsed, err := artifact.Parse(jws); err != nil || !parsed.Leaf().Equal(cert.Leaf) {
			t.Errorf("artifact signature by the TPM key: %v", err)
		}
	})
	t.Run("ok/workertls-client-presents-the-tpm-key", func(t *testing.T) {
		tc, err := workertls.NewClientConfig(t.Context(), workertls.ClientConfig{
			Dir: dir, ServerName: "127.0.0.1",
			Keys: &workertls.KeyLoader{File: agent.FileTPMKey, Load: func(d string) (*tls.Certificate, error) {
				return agent.LoadCertificate(d, agent.WithTPMOpener(open))
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(ca.url() + "/whoami")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != cert.Leaf.SerialNumber.Text(16) {
			t.Errorf("mTLS with the TPM key: %d %q, want the serial %x", resp.StatusCode, b, cert.Leaf.SerialNumber)
		}
	})
	t.Run("ok/renew-over-mtls-rotates-the-tpm-key", func(t *testing.T) {
		renewed, err := a.Renew(t.Context())
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		if p := ca.peers(); len(p) != 1 || !p[0].Equal(cert.Leaf) {
			t.Fatal("the renewal did not present the TPM-enrolled certificate over mTLS")
		}
		next := readKeyRef(t, dir)
		if next.Key == ref.Key || !keyNameRE.MatchString(next.Key) || next.AK != ref.AK {
			t.Errorf("key reference after renewal %+v, before %+v: want a new key, same AK", next, ref)
		}
		if publicEqual(renewed.Leaf.PublicKey, cert.Leaf.PublicKey) {
			t.Error("the renewed certificate is for the old key")
		}
		if got := storeKeys(t, dir); len(got) != 1 || got[0] != next.Key {
			t.Errorf("TPM store keys after renewal %v, want only the new %s", got, next.Key)
		}
		tc, err := agent.LoadCertificate(dir, agent.WithTPMOpener(open))
		if err != nil || !tc.Leaf.Equal(renewed.Leaf) {
			t.Fatalf("LoadCertificate after renewal: %v", err)
		}
		requireNoFile(t, filepath.Join(dir, agent.FileKey))
	})
	t.Run("fail/refused-renewal-keeps-the-current-key", func(t *testing.T) {
		before := readKeyRef(t, dir)
		ca.setRefuse("renew", "certificate_revoked")
		defer ca.setRefuse("renew", "")
		if _, err := a.Renew(t.Context()); !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("Renew refused: %v, want permanent", err)
		}
		if after := readKeyRef(t, dir); after != before {
			t.Errorf("key reference changed by a refused renewal: %+v", after)
		}
		if got := storeKeys(t, dir); len(got) != 1 || got[0] != before.Key {
			t.Errorf("TPM store keys after a refused renewal %v, want only %s (the new key deleted)", got, before.Key)
		}
	})
}

// TestEnrollTPMEKCertificate sends the EK certificate from a file when the
// TPM holds none, and refuses one that is not for this TPM's EK.
func TestEnrollTPMEKCertificate(t *testing.T) {
	open := simulatorTPM(t)
	ca := startTPMCA(t)
	ek, err := agent.ReadEndorsementKey(t.Context(), agent.TPM{Open: open})
	if err != nil {
		t.Fatal(err)
	}
	maker := tpmtest.NewManufacturer(t)
	ekCert := maker.EKCertificate(t, ek.Public)
	ekFile := filepath.Join(t.TempDir(), "ek.der")
	if err := os.WriteFile(ekFile, ekCert, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("ok/ek-certificate-file-is-sent", func(t *testing.T) {
		a := tpmAgent(t, ca, open, filepath.Join(t.TempDir(), "w"), func(c *agent.Config) { c.TPM.EKCertificateFile = ekFile })
		if _, err := a.Enroll(t.Context()); err != nil {
			t.Fatal(err)
		}
		if start := ca.lastStart(); !bytes.Equal(start.EK.Certificate, ekCert) || start.EK.Public != nil {
			t.Error("the start request does not carry exactly the EK certificate")
		}
	})
	t.Run("fail/ek-certificate-of-another-tpm", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		wrong := filepath.Join(t.TempDir(), "other.pem")
		_ = os.WriteFile(wrong, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: maker.EKCertificate(t, other.Public())}), 0o644)
		dir := filepath.Join(t.TempDir(), "w")
		a := tpmAgent(t, ca, open, dir, func(c *agent.Config) { c.TPM.EKCertificateFile = wrong })
		_, err := a.Enroll(t.Context())
		if !errors.Is(err, agent.ErrPermanent) || !strings.Contains(err.Error(), ek.SHA256) {
			t.Fatalf("Enroll with another TPM's EK certificate: %v, want permanent naming the EK hash", err)
		}
		requireNoFile(t, filepath.Join(dir, agent.FileTPMKey))
	})
}

// TestEnrollTPMRefused leaves no key behind when the CA refuses, and a
// TPM enrollment over a file-key enrollment removes key.pem.
func TestEnrollTPMRefused(t *testing.T) {
	open := simulatorTPM(t)
	ca := startTPMCA(t)
	dir := filepath.Join(t.TempDir(), "w")

	t.Run("fail/refused-finish-deletes-the-new-key", func(t *testing.T) {
		ca.setRefuse("finish", "attestation_not_allowed")
		defer ca.setRefuse("finish", "")
		a := tpmAgent(t, ca, open, dir, nil)
		_, err := a.Enroll(t.Context())
		var se *agent.ServerError
		if !errors.As(err, &se) || se.Code != "attestation_not_allowed" || !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("Enroll refused at finish: %v", err)
		}
		requireNoFile(t, filepath.Join(dir, agent.FileTPMKey))
		if got := storeKeys(t, dir); len(got) != 0 {
			t.Errorf("TPM store keys after a refusal: %v, want none", got)
		}
	})
	t.Run("ok/tpm-enrollment-replaces-a-key-file", func(t *testing.T) {
		// A file-key enrollment before: key.pem and its certificate.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		old := ca.leafFor(key.Public())
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		_ = os.WriteFile(filepath.Join(dir, agent.FileKey), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		_ = os.WriteFile(filepath.Join(dir, agent.FileChain), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Raw}), 0o644)
		if _, err := agent.LoadCertificate(dir); err != nil {
			t.Fatal(err)
		}
		cert, err := tpmAgent(t, ca, open, dir, nil).Enroll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		requireNoFile(t, filepath.Join(dir, agent.FileKey))
		tc, err := agent.LoadCertificate(dir, agent.WithTPMOpener(open))
		if err != nil || !tc.Leaf.Equal(cert.Leaf) {
			t.Fatalf("LoadCertificate after switching to the TPM: %v", err)
		}
	})
}

// TestRunTPMReattests renews with new TPM keys under Run and, when the CA
// asks for attestation again, runs both TPM rounds again.
func TestRunTPMReattests(t *testing.T) {
	open := simulatorTPM(t)
	ca := startTPMCA(t)
	dir := filepath.Join(t.TempDir(), "w")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var keys []string
	renewals := 0
	a := tpmAgent(t, ca, open, dir, func(c *agent.Config) {
		c.After = func(time.Duration) <-chan time.Time {
			if ctx.Err() != nil {
				return nil // never fires: Run sees ctx end
			}
			ch := make(chan time.Time, 1)
			ch <- time.Now()
			return ch
		}
		c.OnRenew = func() error {
			renewals++
			keys = append(keys, readKeyRef(t, dir).Key)
			switch renewals {
			case 2: // enrolled, renewed once: now the CA wants attestation
				ca.setRefuse("renew", "reattestation_required")
			case 3:
				cancel()
			}
			return nil
		}
	})
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if renewals != 3 {
		t.Fatalf("%d certificate updates, want 3 (enroll, renew, re-attest)", renewals)
	}
	if n := ca.startCount(); n != 2 {
		t.Errorf("%d TPM start rounds, want 2 (enrollment, re-attestation)", n)
	}
	if keys[0] == keys[1] || keys[1] == keys[2] || keys[0] == keys[2] {
		t.Errorf("TPM keys %v: each certificate must have its own key", keys)
	}
	if got := storeKeys(t, dir); len(got) != 1 || got[0] != keys[2] {
		t.Errorf("TPM store keys %v, want only the last %s", got, keys[2])
	}
}

func publicEqual(a, b crypto.PublicKey) bool {
	pa, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(b)
}

func mustCSRKey(t *testing.T, csrPEM string) crypto.PublicKey {
	t.Helper()
	csr, err := parseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	return csr.PublicKey
}

// parseCSR parses a PEM CSR and checks its signature.
func parseCSR(csrPEM string) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil {
		return nil, errors.New("CSR is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, err
	}
	return csr, nil
}

// verifyCertify checks with go-attestation that certify is TPM2_Certify,
// by the AK with TPMT_PUBLIC akPublic, of key.
func verifyCertify(akPublic []byte, certify *tpmwire.Certify, key crypto.PublicKey) error {
	if certify == nil {
		return errors.New("no tpm_certify")
	}
	akPub, err := attest.ParseAKPublic(attest.TPMVersion20, akPublic)
	if err != nil {
		return err
	}
	cp := attest.CertificationParameters{Public: certify.Public, CreateAttestation: certify.Attest, CreateSignature: certify.Signature}
	if err := cp.Verify(attest.VerifyOpts{Public: akPub.Public, Hash: akPub.Hash}); err != nil {
		return err
	}
	certified, err := attest.ParseAKPublic(attest.TPMVersion20, certify.Public) // any TPMT_PUBLIC
	if err != nil {
		return err
	}
	if !publicEqual(certified.Public, key) {
		return errors.New("the certified key is not the CSR's")
	}
	return nil
}
