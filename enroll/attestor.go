package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Attestor verifies the evidence of one enrollment method and says what it
// vouches for. Attestors never sign: Service.Enroll hands their answer to
// the one issuance pipeline (Service.Issue).
type Attestor interface {
	// Method is the enrollment method's name, e.g. "aws-iid".
	Method() string
	// Attest verifies in.Evidence. Refusals wrap one of this package's
	// kinds (ErrEvidenceMalformed, ErrAttestationInvalid,
	// ErrAttestationExpired, ErrAttestationNotAllowed,
	// ErrAttestorUnavailable, ...), and may wrap the attestor's own error
	// too, for the log.
	Attest(ctx context.Context, in AttestInput) (*Attestation, error)
}

// AttestInput is what a worker sent besides its CSR.
type AttestInput struct {
	// Evidence is the method's evidence, as JSON.
	Evidence json.RawMessage
	// Nonce is the challenge nonce the worker presents; "" if none.
	// Attestors that bind evidence to it (GCP audience, Azure content)
	// check it there; Service.Enroll has already checked it is
	// outstanding and consumes it with the issuance.
	Nonce string
	// Pool is the pool the worker asked for; "" lets the attestor pick
	// the one pool whose policy admits the evidence.
	Pool string
}

// Attestation is what an attestor vouches for.
type Attestation struct {
	// Pool is the pool the identity belongs to.
	Pool string
	// WorkerID is the worker's name in the pool (instance ID, VM ID, the
	// token's worker ID).
	WorkerID string
	// EnrollmentID identifies the credential in the certificate's
	// enrollment extension (token ID, instance ID, ...).
	EnrollmentID string
	// Subject names what was attested, for replay protection and
	// revocation, e.g. "aws:<account>:<instance-id>".
	Subject string
	// Evidence is the summary stored in the ledger row (JSON-encoded).
	Evidence any
	// UseKeys are single-use keys recorded with the issuance; a second
	// issuance presenting one is refused (ErrReplay).
	UseKeys []string
	// ExclusiveSubject allows a new certificate for Subject only when it
	// holds no unexpired, unrevoked one.
	ExclusiveSubject bool
	// NonceBound says the evidence carries the request's nonce, so the
	// nonce is required.
	NonceBound bool
	// TokenID is the one-time token consumed by the issuance (method
	// token).
	TokenID string
}

// DecodeEvidence decodes evidence strictly into v: unknown fields and
// trailing data are errors (wrapping ErrEvidenceMalformed), so a typo in
// a field name is not silently ignored.
func DecodeEvidence(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrEvidenceMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the evidence object", ErrEvidenceMalformed)
	}
	return nil
}
