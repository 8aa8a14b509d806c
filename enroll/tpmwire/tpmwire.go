// Package tpmwire holds the JSON bodies of the two-round TPM 2.0
// enrollment (POST /v1/enroll/tpm/start and /v1/enroll/tpm/finish) and
// the EK hash that names a TPM (EKSHA256), shared by the server and the
// agent. Binary fields are standard base64 (encoding/json's []byte
// encoding). It imports nothing of ours, so the agent links no server
// code.
package tpmwire

import "time"

// Paths of the two rounds.
const (
	StartPath  = "/v1/enroll/tpm/start"
	FinishPath = "/v1/enroll/tpm/finish"
)

// SessionTTL is how long a session from the first round can be finished.
const SessionTTL = 5 * time.Minute

// SessionPrefix starts every session handle.
const SessionPrefix = "tps_"

// StartRequest is the body of the first round.
type StartRequest struct {
	// Pool optionally names the pool; without it the server picks the one
	// TPM pool that admits the EK.
	Pool string `json:"pool,omitempty"`
	// CSR is the worker's PKCS#10 request, PEM, signed by the TPM key
	// that Certify certifies.
	CSR string `json:"csr"`
	// EK is the endorsement key.
	EK EK `json:"ek"`
	// AK is the attestation key.
	AK AK `json:"ak"`
	// Certify is TPM2_Certify of the CSR's key by the AK.
	Certify Certify `json:"certify"`
}

// EK is the endorsement key: its certificate (DER) when the TPM has one,
// else its public key (PKIX DER) as registered by an operator. Exactly
// one of Certificate and Public is set.
type EK struct {
	// Certificate is the EK certificate, DER.
	Certificate []byte `json:"certificate,omitempty"`
	// Intermediates are optional manufacturer intermediates (DER) that
	// the TPM or the platform ships with the EK certificate.
	Intermediates [][]byte `json:"intermediates,omitempty"`
	// Public is the EK public key, PKIX DER (SubjectPublicKeyInfo).
	Public []byte `json:"public,omitempty"`
}

// AK is the attestation key as created by the TPM: its TPMT_PUBLIC area,
// its TPMS_CREATION_DATA, and TPM2_CertifyCreation's attestation and
// signature by the AK itself.
type AK struct {
	Public            []byte `json:"public"`
	CreateData        []byte `json:"create_data"`
	CreateAttestation []byte `json:"create_attestation"`
	CreateSignature   []byte `json:"create_signature"`
}

// Certify is TPM2_Certify of the worker key by the AK: the worker key's
// TPMT_PUBLIC area, the TPMS_ATTEST the TPM produced, and the AK's
// signature (TPMT_SIGNATURE) over it.
type Certify struct {
	Public    []byte `json:"public"`
	Attest    []byte `json:"attest"`
	Signature []byte `json:"signature"`
}

// StartResponse is the answer to the first round.
type StartResponse struct {
	// Session names the session in the second round. Single use.
	Session string `json:"session"`
	// ExpiresAt is when the session stops being accepted.
	ExpiresAt time.Time `json:"expires_at"`
	// Credential is MakeCredential to the EK for the AK's name: the TPM
	// releases the secret only to TPM2_ActivateCredential with that EK
	// and that AK loaded.
	Credential Credential `json:"credential"`
}

// Credential is the TPM2_MakeCredential output.
type Credential struct {
	// CredentialBlob is the TPM2B_ID_OBJECT.
	CredentialBlob []byte `json:"credential_blob"`
	// EncryptedSecret is the TPM2B_ENCRYPTED_SECRET (the seed encrypted to
	// the EK).
	EncryptedSecret []byte `json:"encrypted_secret"`
}

// FinishRequest is the body of the second round.
type FinishRequest struct {
	// Session is StartResponse.Session.
	Session string `json:"session"`
	// Secret is what TPM2_ActivateCredential released.
	Secret []byte `json:"secret"`
}

// The second round answers like POST /v1/enroll: 201 with {certificate,
// chain, spiffe_id, serial, not_after, renew_after}.
