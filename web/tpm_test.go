//go:build tpmsimulator

package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/internal/syncbuf"
	"github.com/workerca/workerca/internal/tpmtest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
	"go.step.sm/crypto/tpm"
)

// tpmFixture is a real server with method tpm: pool "metal" admits EKs
// certified by the test manufacturer or registered to it, pool "lab"
// registered EKs only; and a simulated TPM.
type tpmFixture struct {
	*fixture
	dev *tpmtest.Device
	mfr *tpmtest.Manufacturer
	// log is the registration authority's log: refusals in detail.
	log *syncbuf.Buffer
}

func startTPM(t *testing.T, st *store.Store) *tpmFixture {
	t.Helper()
	mfr := tpmtest.NewManufacturer(t)
	log := &syncbuf.Buffer{}
	f := start(t, st, func(f *fixture, ec *enroll.Config, _ *web.Config) {
		ec.Logger = slog.New(slog.NewTextHandler(log, nil))
		metal, lab := pool(t, "metal", 0), pool(t, "lab", 0)
		metal.Methods = []string{enroll.MethodTPM, enroll.MethodToken}
		lab.Methods = []string{enroll.MethodTPM}
		ec.Pools = append(ec.Pools, metal, lab)
		ec.TPM = &enroll.TPMConfig{
			Roots: tpmattest.NewEKRoots([]*x509.Certificate{mfr.Root}, nil),
			Pools: []enroll.TPMPool{{Pool: "metal", EK: enroll.TPMEKAny}, {Pool: "lab", EK: enroll.TPMEKRegistered}},
		}
	})
	return &tpmFixture{fixture: f, dev: tpmtest.OpenDevice(t), mfr: mfr, log: log}
}

// ekHash is the simulator's EK hash, as `workerca tpm register` takes it.
func (f *tpmFixture) ekHash(t *testing.T) string {
	t.Helper()
	sum := sha256.Sum256(f.dev.EKPublic(t))
	return hex.EncodeToString(sum[:])
}

// withCert replaces the request's EK public key by a certificate from the
// test manufacturer.
func (f *tpmFixture) withCert(t *testing.T, req tpmwire.StartRequest) tpmwire.StartRequest {
	t.Helper()
	req.EK = tpmwire.EK{Certificate: f.mfr.EKCertificate(t, f.dev.EK.Public())}
	return req
}

func (f *tpmFixture) start(t *testing.T, req tpmwire.StartRequest) (tpmwire.StartResponse, response) {
	t.Helper()
	r := f.postJSON(t, tpmwire.StartPath, "", req)
	var out tpmwire.StartResponse
	if r.status == http.StatusOK {
		decode(t, r, &out)
	}
	return out, r
}

func (f *tpmFixture) finish(t *testing.T, session string, secret []byte) response {
	t.Helper()
	return f.postJSON(t, tpmwire.FinishPath, "", tpmwire.FinishRequest{Session: session, Secret: secret})
}

// wantRefusal checks an error answer, and that the refusal logged since
// mark says why: the caller gets the stable code, the log the detail.
func (f *tpmFixture) wantRefusal(t *testing.T, mark int, r response, status int, code, why string) {
	t.Helper()
	wantError(t, r, status, code)
	if logged := f.log.String()[mark:]; !strings.Contains(logged, why) {
		t.Errorf("%s: the log does not say %q:\n%s", code, why, logged)
	}
}

// mark is where the log ends now.
func (f *tpmFixture) mark() int { return len(f.log.String()) }

// TestTPMEnrollEndToEnd is the whole chain against a real server over
// TLS, on both databases: an EK certified by the manufacturer, an AK
// made in the TPM, a TPM key certified by it, credential activation in
// the TPM, the certificate, and mTLS with the TPM key. The session then
// cannot be finished again.
func TestTPMEnrollEndToEnd(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := startTPM(t, st)
		ak := f.dev.NewAK(t, "ak")
		key := f.dev.NewKey(t, ak, "worker-1")
		res, r := f.start(t, f.withCert(t, f.dev.Start(t, ak, key)))
		if r.status != http.StatusOK {
			t.Fatalf("start: %d %s", r.status, r.body)
		}
		if !strings.HasPrefix(res.Session, tpmwire.SessionPrefix) || !res.ExpiresAt.Equal(catest.Epoch.Add(tpmwire.SessionTTL)) {
			t.Fatalf("start answer %+v", res)
		}
		secret, err := f.dev.Activate(t, ak, res.Credential)
		if err != nil {
			t.Fatalf("the TPM did not activate the credential: %v", err)
		}
		r = f.finish(t, res.Session, secret)
		if r.status != http.StatusCreated {
			t.Fatalf("finish: %d %s", r.status, r.body)
		}
		var got web.EnrollResponse
		decode(t, r, &got)
		chain := parseChain(t, []byte(got.Chain))
		leaf := chain[0]
		hash := f.ekHash(t)
		wantID := "spiffe://" + trustDomain + "/worker/metal/" + enroll.TPMWorkerID(hash)
		if got.SPIFFEID != wantID || leaf.URIs[0].String() != wantID || leaf.Subject.CommonName != "ek-"+hash[:32] {
			t.Fatalf("SPIFFE ID %s (CN %s), want %s", got.SPIFFEID, leaf.Subject.CommonName, wantID)
		}
		if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
			t.Fatal("the certificate's key is not the TPM key")
		}

		// The ledger records the EK hash and the AK name, and the subject
		// to revoke the TPM by.
		row, err := st.Certificate(context.Background(), got.Serial)
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]string
		if err := json.Unmarshal([]byte(row.Evidence), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["ek_sha256"] != hash || ev["ak_name"] != akName(t, f.dev.AKWire(t, ak).Public) || ev["tpm_manufacturer"] != tpmtest.ManufacturerID {
			t.Fatalf("evidence %v", ev)
		}
		if row.Method != enroll.MethodTPM || row.AttestationSubject != "tpm:"+hash || row.EnrollmentID != hash {
			t.Fatalf("ledger row method %s subject %s enrollment %s", row.Method, row.AttestationSubject, row.EnrollmentID)
		}

		// The TPM key serves mTLS: the worker reads its own history.
		signer, err := key.Signer(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tc := &tls.Certificate{Certificate: [][]byte{chain[0].Raw, chain[1].Raw}, PrivateKey: signer, Leaf: leaf}
		r = f.do(t, request{method: http.MethodGet, path: "/v1/workers/" + enroll.TPMWorkerID(hash) + "/certificates", cert: tc})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), got.Serial) {
			t.Fatalf("mTLS with the TPM key: %d %s", r.status, r.body)
		}

		// Replayed: the session is single use, and the refusal is counted.
		wantError(t, f.finish(t, res.Session, secret), http.StatusUnauthorized, "tpm_session_used")
		m := f.do(t, request{method: http.MethodGet, path: "/metrics", plain: true})
		for _, want := range []string{`workerca_issuance_total{method="tpm",outcome="issued",pool="metal"} 1`,
			`workerca_issuance_total{method="tpm",outcome="session_refused",pool="metal"} 1`} {
			if !strings.Contains(string(m.body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// akName is the TPM name of a public area with nameAlg SHA-256.
func akName(t *testing.T, public []byte) string {
	t.Helper()
	sum := sha256.Sum256(public)
	return hex.EncodeToString(binary.BigEndian.AppendUint16(nil, 0x000b)) + hex.EncodeToString(sum[:])
}

// TestTPMRefusals walks each check of method tpm with real TPM evidence
// and shows its refusal, and that no refusal records a certificate.
func TestTPMRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := startTPM(t, st)
		ak := f.dev.NewAK(t, "ak")
		key := f.dev.NewKey(t, ak, "k1")
		honest := f.withCert(t, f.dev.Start(t, ak, key))
		before := f.ledger(t, f.admin)

		t.Run("ek-unknown-root", func(t *testing.T) {
			other := tpmtest.NewManufacturer(t)
			req := honest
			req.EK = tpmwire.EK{Certificate: other.EKCertificate(t, f.dev.EK.Public())}
			_, r := f.start(t, req)
			wantError(t, r, http.StatusUnauthorized, "ek_untrusted")
		})
		t.Run("ek-not-registered", func(t *testing.T) {
			req := honest
			req.EK = tpmwire.EK{Public: f.dev.EKPublic(t)}
			_, r := f.start(t, req)
			wantError(t, r, http.StatusUnauthorized, "ek_not_registered")
			if !strings.Contains(string(r.body), f.ekHash(t)) {
				t.Errorf("the refusal does not name the EK hash to register: %s", r.body)
			}
		})
		t.Run("ek-certified-but-pool-wants-registered", func(t *testing.T) {
			req := honest
			req.Pool = "lab"
			_, r := f.start(t, req)
			wantError(t, r, http.StatusUnauthorized, "ek_not_registered")
		})
		t.Run("ak-not-restricted", func(t *testing.T) {
			req := honest
			req.AK.Public = flipAttribute(t, req.AK.Public, 0x00010000) // TPMA_OBJECT restricted
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "not a restricted signing key")
		})
		t.Run("ak-not-fixed", func(t *testing.T) {
			req := honest
			req.AK.Public = flipAttribute(t, req.AK.Public, 0x00000002) // fixedTPM
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "not fixedTPM")
		})
		t.Run("ak-creation-forged", func(t *testing.T) {
			// Another AK's creation data with this AK's public area.
			other := f.dev.AKWire(t, f.dev.NewAK(t, "ak-other"))
			req := honest
			req.AK.CreateData, req.AK.CreateAttestation, req.AK.CreateSignature = other.CreateData, other.CreateAttestation, other.CreateSignature
			_, r := f.start(t, req)
			wantError(t, r, http.StatusUnauthorized, "attestation_invalid")
		})
		t.Run("key-certified-by-another-ak", func(t *testing.T) {
			ak2 := f.dev.NewAK(t, "ak2")
			k2 := f.dev.NewKey(t, ak2, "k2")
			req := f.withCert(t, f.dev.Start(t, ak2, k2))
			req.AK = honest.AK // the AK that is sent did not certify k2
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "not certified by the AK")
		})
		t.Run("csr-key-not-the-certified-key", func(t *testing.T) {
			k3 := f.dev.NewKey(t, ak, "k3")
			req := honest
			req.CSR = f.dev.CSR(t, k3) // certify still names k1
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "not the CSR's key")
		})
		t.Run("csr-key-software", func(t *testing.T) {
			soft, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			req := honest
			req.CSR = tpmtest.CSRWith(t, soft)
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "not the CSR's key")
		})
		t.Run("key-exportable", func(t *testing.T) {
			certify, signer := f.dev.ExportableKey(t, ak)
			req := honest
			req.CSR, req.Certify = tpmtest.CSRWith(t, signer), certify
			m := f.mark()
			_, r := f.start(t, req)
			f.wantRefusal(t, m, r, http.StatusUnauthorized, "attestation_invalid", "exportable")
		})
		t.Run("wrong-secret-burns-session", func(t *testing.T) {
			res, r := f.start(t, honest)
			if r.status != http.StatusOK {
				t.Fatalf("start: %d %s", r.status, r.body)
			}
			guess := make([]byte, 32)
			if _, err := rand.Read(guess); err != nil {
				t.Fatal(err)
			}
			wantError(t, f.finish(t, res.Session, guess), http.StatusUnauthorized, "tpm_activation_failed")
			secret, err := f.dev.Activate(t, ak, res.Credential)
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, f.finish(t, res.Session, secret), http.StatusUnauthorized, "tpm_session_used")
		})
		t.Run("other-tpm-ek", func(t *testing.T) {
			// This TPM's AK with another TPM's (registered) EK: the
			// credential is encrypted to an EK this TPM does not hold,
			// so it cannot be activated here.
			foreign, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := x509.MarshalPKIXPublicKey(&foreign.PublicKey)
			sum := sha256.Sum256(pub)
			r := f.postJSON(t, "/v1/admin/tpm/eks", f.admin, map[string]string{"ek_sha256": hex.EncodeToString(sum[:]), "pool": "metal"})
			if r.status != http.StatusCreated {
				t.Fatalf("register: %d %s", r.status, r.body)
			}
			req := honest
			req.EK = tpmwire.EK{Public: pub}
			res, r := f.start(t, req)
			if r.status != http.StatusOK {
				t.Fatalf("start: %d %s", r.status, r.body)
			}
			if _, err := f.dev.Activate(t, ak, res.Credential); err == nil {
				t.Fatal("the TPM activated a credential made for another TPM's EK")
			}
		})
		t.Run("session-expired", func(t *testing.T) {
			res, r := f.start(t, honest)
			if r.status != http.StatusOK {
				t.Fatalf("start: %d %s", r.status, r.body)
			}
			secret, err := f.dev.Activate(t, ak, res.Credential)
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Add(tpmwire.SessionTTL)
			defer f.clock.Add(-tpmwire.SessionTTL)
			wantError(t, f.finish(t, res.Session, secret), http.StatusUnauthorized, "tpm_session_expired")
		})
		t.Run("session-unknown", func(t *testing.T) {
			wantError(t, f.finish(t, tpmwire.SessionPrefix+strings.Repeat("A", enroll.NonceLength), []byte("x")), http.StatusUnauthorized, "tpm_session_invalid")
			wantError(t, f.finish(t, "nope", []byte("x")), http.StatusUnauthorized, "tpm_session_invalid")
		})
		t.Run("malformed", func(t *testing.T) {
			req := honest
			req.AK.Public = []byte{0xde, 0xad}
			_, r := f.start(t, req)
			wantError(t, r, http.StatusBadRequest, "evidence_malformed")
			req = honest
			req.EK.Public = f.dev.EKPublic(t)
			_, r = f.start(t, req)
			wantError(t, r, http.StatusBadRequest, "evidence_malformed")
			req = honest
			req.Certify.Signature = nil
			_, r = f.start(t, req)
			wantError(t, r, http.StatusBadRequest, "evidence_malformed")
			req = honest
			req.CSR = "not a csr"
			_, r = f.start(t, req)
			wantError(t, r, http.StatusBadRequest, "bad_csr")
			r = f.do(t, request{method: http.MethodPost, path: tpmwire.StartPath, contentType: "application/json", body: []byte(`{"csr":"` + strings.Repeat("A", 70<<10) + `"}`)})
			wantError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
			r = f.do(t, request{method: http.MethodPost, path: tpmwire.FinishPath, contentType: "application/json", body: []byte(`{"session":1}`)})
			wantError(t, r, http.StatusBadRequest, "invalid_json")
		})
		if after := f.ledger(t, f.admin); !after.equal(before) {
			t.Fatalf("refusals changed the ledger: %+v -> %+v", before, after)
		}
	})
}

// TestTPMRegisteredEK shows a TPM without an EK certificate enrolls once
// an operator registered its EK, under the registered worker name, and
// only into the registered pool; and the registration API's refusals.
func TestTPMRegisteredEK(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := startTPM(t, st)
		hash := f.ekHash(t)
		ak := f.dev.NewAK(t, "ak")
		req := f.dev.Start(t, ak, f.dev.NewKey(t, ak, "k"))
		_, r := f.start(t, req)
		wantError(t, r, http.StatusUnauthorized, "ek_not_registered")

		reg := func(auth string, body map[string]string) response {
			return f.postJSON(t, "/v1/admin/tpm/eks", auth, body)
		}
		wantError(t, reg(f.admin, map[string]string{"ek_sha256": "abc", "pool": "lab"}), http.StatusBadRequest, "invalid_request")
		wantError(t, reg(f.admin, map[string]string{"ek_sha256": hash, "pool": "default"}), http.StatusForbidden, "method_not_allowed_for_pool")
		wantError(t, reg(f.admin, map[string]string{"ek_sha256": hash, "pool": "nope"}), http.StatusBadRequest, "unknown_pool")
		wantError(t, reg(f.admin, map[string]string{"ek_sha256": hash, "pool": "lab", "worker_id": "a/b"}), http.StatusBadRequest, "invalid_request")
		wantError(t, reg(f.apiKey(t, web.ScopeTokensCreate), map[string]string{"ek_sha256": hash, "pool": "lab"}), http.StatusForbidden, "insufficient_scope")
		if r := reg(f.admin, map[string]string{"ek_sha256": strings.ToUpper(hash), "pool": "lab", "worker_id": "rack7-node3"}); r.status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		wantError(t, reg(f.admin, map[string]string{"ek_sha256": hash, "pool": "lab"}), http.StatusConflict, "tpm_ek_exists")
		r = f.do(t, request{method: http.MethodGet, path: "/v1/admin/tpm/eks?pool=lab", auth: f.apiKey(t, web.ScopeRead)})
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"worker_id":"rack7-node3"`) {
			t.Fatalf("list: %d %s", r.status, r.body)
		}

		// A registered EK cannot choose another pool.
		other := req
		other.Pool = "metal"
		_, r = f.start(t, other)
		wantError(t, r, http.StatusForbidden, "attestation_not_allowed")

		got := f.rounds(t, ak, req)
		if got.SPIFFEID != "spiffe://"+trustDomain+"/worker/lab/rack7-node3" {
			t.Fatalf("SPIFFE ID %s", got.SPIFFEID)
		}

		// Unregistered, the TPM cannot start again.
		r = f.do(t, request{method: http.MethodDelete, path: "/v1/admin/tpm/eks/" + hash, auth: f.admin})
		if r.status != http.StatusNoContent {
			t.Fatalf("unregister: %d %s", r.status, r.body)
		}
		wantError(t, f.do(t, request{method: http.MethodDelete, path: "/v1/admin/tpm/eks/" + hash, auth: f.admin}), http.StatusNotFound, "tpm_ek_not_found")
		_, r = f.start(t, req)
		wantError(t, r, http.StatusUnauthorized, "ek_not_registered")
	})
}

// flipAttribute flips bits of a TPMT_PUBLIC's objectAttributes (after
// the 2-byte type and 2-byte nameAlg).
func flipAttribute(t *testing.T, public []byte, bits uint32) []byte {
	t.Helper()
	out := append([]byte(nil), public...)
	a := binary.BigEndian.Uint32(out[4:8])
	binary.BigEndian.PutUint32(out[4:8], a^bits)
	return out
}

// rounds runs both rounds for req, activating the credential with ak in
// the TPM, and returns the certificate's answer.
func (f *tpmFixture) rounds(t *testing.T, ak *tpm.AK, req tpmwire.StartRequest) web.EnrollResponse {
	t.Helper()
	res, r := f.start(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	secret, err := f.dev.Activate(t, ak, res.Credential)
	if err != nil {
		t.Fatal(err)
	}
	r = f.finish(t, res.Session, secret)
	if r.status != http.StatusCreated {
		t.Fatalf("finish: %d %s", r.status, r.body)
	}
	var got web.EnrollResponse
	decode(t, r, &got)
	return got
}

// enrollTPM enrolls key (EK certified by the manufacturer) and returns
// the chain and a TLS certificate signing with the TPM key.
func (f *tpmFixture) enrollTPM(t *testing.T, ak *tpm.AK, key *tpm.Key) ([]*x509.Certificate, *tls.Certificate) {
	t.Helper()
	chain := parseChain(t, []byte(f.rounds(t, ak, f.withCert(t, f.dev.Start(t, ak, key))).Chain))
	return chain, f.tlsWith(t, chain, key)
}

func (f *tpmFixture) tlsWith(t *testing.T, chain []*x509.Certificate, key *tpm.Key) *tls.Certificate {
	t.Helper()
	signer, err := key.Signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{chain[0].Raw, chain[1].Raw}, PrivateKey: signer, Leaf: chain[0]}
}

// TestTPMRenewal shows a TPM worker's renewal must carry TPM2_Certify of
// the new key by the AK its enrollment proved, so every certificate of
// the renewal chain names a key in that TPM; and that the evidence
// carries forward to the next renewal.
func TestTPMRenewal(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := startTPM(t, st)
		ak := f.dev.NewAK(t, "ak")
		chain, tc := f.enrollTPM(t, ak, f.dev.NewKey(t, ak, "k1"))
		renew := func(cert *tls.Certificate, body map[string]any) response {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			return f.do(t, request{method: http.MethodPost, path: "/v1/renew", cert: cert, contentType: "application/json", body: b})
		}
		k2 := f.dev.NewKey(t, ak, "k2")
		before := f.ledger(t, f.admin)

		wantError(t, renew(tc, map[string]any{"csr": f.dev.CSR(t, k2)}), http.StatusBadRequest, "evidence_malformed")
		soft, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		m := f.mark()
		f.wantRefusal(t, m, renew(tc, map[string]any{"csr": tpmtest.CSRWith(t, soft), "tpm_certify": f.dev.CertifyWire(t, k2)}),
			http.StatusUnauthorized, "attestation_invalid", "not the CSR's key")
		other := f.dev.NewKey(t, f.dev.NewAK(t, "ak-other"), "k-other")
		m = f.mark()
		f.wantRefusal(t, m, renew(tc, map[string]any{"csr": f.dev.CSR(t, other), "tpm_certify": f.dev.CertifyWire(t, other)}),
			http.StatusUnauthorized, "attestation_invalid", "not certified by the AK")
		if after := f.ledger(t, f.admin); !after.equal(before) {
			t.Fatalf("refused renewals changed the ledger: %+v -> %+v", before, after)
		}

		r := renew(tc, map[string]any{"csr": f.dev.CSR(t, k2), "tpm_certify": f.dev.CertifyWire(t, k2)})
		if r.status != http.StatusCreated {
			t.Fatalf("renew: %d %s", r.status, r.body)
		}
		var got web.EnrollResponse
		decode(t, r, &got)
		chain2 := parseChain(t, []byte(got.Chain))
		row, err := st.Certificate(context.Background(), got.Serial)
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]string
		if err := json.Unmarshal([]byte(row.Evidence), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["renewal_of"] != ca.SerialHex(chain[0].SerialNumber) || ev["ak_name"] != akName(t, f.dev.AKWire(t, ak).Public) ||
			ev["ek_sha256"] != f.ekHash(t) || ev["key_name"] == "" || row.Method != enroll.MethodTPM {
			t.Fatalf("renewal evidence %v (method %s)", ev, row.Method)
		}

		// The next renewal is judged on the renewed row's evidence.
		k3 := f.dev.NewKey(t, ak, "k3")
		if r := renew(f.tlsWith(t, chain2, k2), map[string]any{"csr": f.dev.CSR(t, k3), "tpm_certify": f.dev.CertifyWire(t, k3)}); r.status != http.StatusCreated {
			t.Fatalf("second renewal: %d %s", r.status, r.body)
		}

		// Workers of other methods do not send it.
		worker, _ := f.workerCert(t, "default", "w-token")
		wantError(t, renew(worker, map[string]any{"csr": string(csrPEM(t, soft)), "tpm_certify": f.dev.CertifyWire(t, k3)}),
			http.StatusBadRequest, "invalid_request")
	})
}
