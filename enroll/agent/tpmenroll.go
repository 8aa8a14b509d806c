package agent

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"

	"go.step.sm/crypto/tpm"

	"github.com/workerca/workerca/enroll/tpmwire"
)

// tpmAdvice is what to check when the TPM itself fails.
const tpmAdvice = "check --tpm-device and that this user may use the TPM (on Linux /dev/tpmrm0, usually group tss)"

// tpmStart is the first round made ready: the request, and the AK and new
// key it speaks for.
type tpmStart struct {
	req tpmwire.StartRequest
	ak  *tpm.AK
	key *tpmSigner
}

// startTPM reads the EK, gets the AK, makes a new key certified by the
// AK and a CSR signed by it, and builds the first round's body. On error
// nothing is left in the store but the AK.
func (a *Agent) startTPM(ctx context.Context, t *tpm.TPM) (*tpmStart, error) {
	ek, err := endorsementKey(ctx, t)
	if err != nil {
		return nil, permanent(err, tpmAdvice)
	}
	wek, err := a.wireEK(ek)
	if err != nil {
		return nil, err
	}
	ak, err := attestationKey(ctx, t)
	if err != nil {
		return nil, permanent(err, tpmAdvice)
	}
	ap, err := ak.AttestationParameters(ctx)
	if err != nil {
		return nil, permanent(fmt.Errorf("agent: TPM attestation key: %w", err),
			"if the TPM was cleared, the AK kept in "+DirTPMStore+"/ is no longer usable: remove that directory and enroll again")
	}
	key, csr, certify, err := a.newTPMKey(ctx, t, tpmKeyRef{Device: a.cfg.TPM.Device, Store: DirTPMStore, AK: ak.Name()})
	if err != nil {
		return nil, permanent(err, tpmAdvice)
	}
	return &tpmStart{
		req: tpmwire.StartRequest{
			Pool: a.cfg.Pool, CSR: string(csr), EK: wek,
			AK:      tpmwire.AK{Public: ap.Public, CreateData: ap.CreateData, CreateAttestation: ap.CreateAttestation, CreateSignature: ap.CreateSignature},
			Certify: certify,
		},
		ak: ak, key: key,
	}, nil
}

// enrollTPM runs both rounds of the TPM enrollment: start (EK, AK, the
// certified key, the CSR), credential activation in the TPM, finish
// (the secret). It returns the new TPM key and the CA's answer; on error
// the key is already deleted.
func (a *Agent) enrollTPM(ctx context.Context, roots []*x509.Certificate) (crypto.Signer, []byte, error) {
	t, err := openTPM(a.cfg.TPM.Open, a.cfg.Dir, tpmKeyRef{Device: a.cfg.TPM.Device, Store: DirTPMStore})
	if err != nil {
		return nil, nil, permanent(err, tpmAdvice)
	}
	st, err := a.startTPM(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	body, err := a.tpmRounds(ctx, roots, st)
	if err != nil {
		a.dropTPMKey(ctx, st.key)
		return nil, nil, err
	}
	return st.key, body, nil
}

func (a *Agent) tpmRounds(ctx context.Context, roots []*x509.Certificate, st *tpmStart) ([]byte, error) {
	c := a.client(a.trustedTLS(roots, nil))
	req, err := json.Marshal(st.req)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	_, body, err := a.do(ctx, c, "enroll", http.MethodPost, tpmwire.StartPath, "application/json", nil, req)
	if err != nil {
		return nil, a.refusal(err)
	}
	var sr tpmwire.StartResponse
	if err := json.Unmarshal(body, &sr); err != nil || sr.Session == "" {
		return nil, fmt.Errorf("agent: %s: the CA's answer holds no session", tpmwire.StartPath)
	}
	secret, err := st.ak.ActivateCredential(ctx, tpm.EncryptedCredential{
		Credential: sr.Credential.CredentialBlob, Secret: sr.Credential.EncryptedSecret,
	})
	if err != nil {
		return nil, permanent(fmt.Errorf("agent: the TPM did not activate the CA's credential: %w", err),
			"the credential is not for this TPM's EK and AK")
	}
	req, err = json.Marshal(tpmwire.FinishRequest{Session: sr.Session, Secret: secret})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	_, body, err = a.do(ctx, c, "enroll", http.MethodPost, tpmwire.FinishPath, "application/json", nil, req)
	return body, a.refusal(err)
}

// renewTPMKey makes the key of a renewal for a TPM enrollment: a new key
// in the same TPM and store, certified by the same AK; the CA checks that
// certification (tpm_certify) before it renews.
func (a *Agent) renewTPMKey(ctx context.Context, cur *tpmSigner) (crypto.Signer, []byte, *tpmwire.Certify, error) {
	t, err := openTPM(a.cfg.TPM.Open, a.cfg.Dir, cur.ref)
	if err != nil {
		return nil, nil, nil, permanent(err, tpmAdvice)
	}
	key, csr, certify, err := a.newTPMKey(ctx, t, cur.ref)
	if err != nil {
		return nil, nil, nil, permanent(err, tpmAdvice)
	}
	return key, csr, &certify, nil
}

// csrFor makes a PEM CSR signed by key, with no names (the CA takes the
// identity from the evidence).
func (a *Agent) csrFor(key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(a.cfg.Rand, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("agent: making the CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
