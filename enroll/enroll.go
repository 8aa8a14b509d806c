package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/workerca/workerca/ca"
)

// EnrollRequest is POST /v1/enroll: a CSR with attestation evidence.
type EnrollRequest struct {
	// Method names the attestor, e.g. "aws-iid".
	Method string
	// CSR is the worker's request, PEM or DER.
	CSR []byte
	// Nonce is a challenge nonce from CreateChallenge; required by
	// methods that bind their evidence to it.
	Nonce string
	// Evidence is the method's evidence, as JSON.
	Evidence json.RawMessage
	// Pool optionally names the pool; without it the attestor picks the
	// one pool that admits the evidence.
	Pool string
}

// Enroll verifies the evidence with the method's attestor and issues the
// certificate it vouches for. A presented nonce must be outstanding; it is
// consumed with the issuance, in the same transaction as the single-use
// evidence keys, so evidence and nonce are accepted once, ever.
func (s *Service) Enroll(ctx context.Context, req EnrollRequest) (*Result, error) {
	start := s.cfg.Clock()
	att, ok := s.attestors[req.Method]
	if req.Method == MethodTPM && s.cfg.TPM != nil {
		return nil, fmt.Errorf("%w: method %s enrolls in two rounds: POST /v1/enroll/tpm/start, then /v1/enroll/tpm/finish", ErrInvalidRequest, MethodTPM)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %v)", ErrUnknownMethod, req.Method, s.Methods())
	}
	if len(req.Evidence) == 0 || string(req.Evidence) == "null" {
		return nil, fmt.Errorf("%w: no evidence", ErrEvidenceMalformed)
	}
	if req.Pool != "" {
		if _, err := s.Pool(req.Pool); err != nil {
			return nil, err
		}
	}
	var nonceHash string
	if req.Nonce != "" {
		if err := s.checkNonce(ctx, req.Nonce); err != nil {
			s.observe(orUnknown(req.Pool), req.Method, err, start)
			return nil, err
		}
		nonceHash = hashNonce(req.Nonce)
	}
	a, err := att.Attest(ctx, AttestInput{Evidence: req.Evidence, Nonce: req.Nonce, Pool: req.Pool})
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "attestation refused", "method", req.Method, "pool", req.Pool, "error", err)
		s.observe(orUnknown(req.Pool), req.Method, err, start)
		return nil, err
	}
	if a.NonceBound && req.Nonce == "" {
		err := fmt.Errorf("%w: method %s binds its evidence to a challenge nonce", ErrNonceRequired, req.Method)
		s.observe(orUnknown(req.Pool), req.Method, err, start)
		return nil, err
	}
	if req.Pool != "" && a.Pool != req.Pool {
		return nil, fmt.Errorf("enroll: attestor %s answered pool %q for a request for %q", req.Method, a.Pool, req.Pool)
	}
	return s.issueLimited(a.Pool, req.Method, start, func() (*Result, error) {
		return s.Issue(ctx, Request{
			CSR: req.CSR,
			Identity: ca.Identity{
				Pool: a.Pool, WorkerID: a.WorkerID, Method: req.Method, EnrollmentID: a.EnrollmentID,
			},
			AttestationSubject: a.Subject,
			Evidence:           a.Evidence,
			TokenID:            a.TokenID,
			NonceHash:          nonceHash,
			UseKeys:            a.UseKeys,
			ExclusiveSubject:   a.ExclusiveSubject,
			Actor:              a.Subject,
		})
	})
}

// Methods lists the enrollment methods this service has attestors for.
func (s *Service) Methods() []string {
	out := make([]string, 0, len(s.attestors))
	for _, a := range s.cfg.Attestors {
		out = append(out, a.Method())
	}
	if s.cfg.TPM != nil {
		out = append(out, MethodTPM)
	}
	return append([]string{MethodToken}, out...)
}

// RenewAfter is when a worker should renew a certificate: after two
// thirds of its lifetime.
func RenewAfter(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

func orUnknown(pool string) string {
	if pool == "" {
		return "unknown"
	}
	return pool
}

// tokenAttestor is method "token" on POST /v1/enroll: evidence {"token":
// "wct_..."}.
type tokenAttestor struct{ s *Service }

func (tokenAttestor) Method() string { return MethodToken }

func (t tokenAttestor) Attest(ctx context.Context, in AttestInput) (*Attestation, error) {
	var ev struct {
		Token string `json:"token"`
	}
	if err := DecodeEvidence(in.Evidence, &ev); err != nil {
		return nil, err
	}
	if ev.Token == "" {
		return nil, fmt.Errorf("%w: token evidence is {\"token\": \"wct_...\"}", ErrEvidenceMalformed)
	}
	row, err := t.s.checkToken(ctx, ev.Token)
	if err != nil {
		return nil, err
	}
	if in.Pool != "" && in.Pool != row.Pool {
		return nil, fmt.Errorf("%w: the token is bound to another pool", ErrTokenInvalid)
	}
	return t.s.tokenAttestation(row), nil
}
