package verifier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
)

// ArtifactRequest is one artifact signature to check.
type ArtifactRequest struct {
	// Digest is the artifact's SHA-256 as the verifier computed it
	// (artifact.DigestFile): 64 lowercase hex digits.
	Digest string
	// Signature is the compact JWS the worker made (artifact.Sign).
	Signature string
	// Receipt, optional, is the CA's receipt of the signature's
	// registration (POST /v1/artifacts). With it, the certificate is
	// checked at the receipt's registered_at, even long after it
	// expired; without it, now.
	Receipt string
}

// Artifact checks an artifact signature: that it verifies with its x5c
// leaf's key and is over req.Digest; then, if there is a receipt, that
// the CA signed it with a status key (Config.StatusKeys), that it is for
// this digest, certificate and signature, and that the registration has
// not expired; then the x5c chain as Certificate does, at the receipt's
// registered_at, or now without a receipt.
func (v *Verifier) Artifact(ctx context.Context, req ArtifactRequest) (*Result, error) {
	if err := artifact.CheckDigest(req.Digest); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	now := v.now()
	r := &Result{At: now, AtSource: AtNow, Revocation: RevocationNotChecked}
	sig, err := artifact.Parse(req.Signature)
	switch {
	case errors.Is(err, artifact.ErrBadSignature):
		return r.reject(CodeBadSignature, "the signature does not verify with its x5c leaf key: %v", err), nil
	case err != nil:
		return r.reject(CodeMalformed, "signature: %v", err), nil
	}
	r.Serial = ca.SerialHex(sig.Leaf().SerialNumber)
	r.SHA256, r.Name = sig.Payload.SHA256, sig.Payload.Name
	if sig.Payload.SHA256 != req.Digest {
		return r.reject(CodeDigestMismatch, "the file's SHA-256 is %s, the signature is over %s", req.Digest, sig.Payload.SHA256), nil
	}
	at, src := now, AtNow
	if strings.TrimSpace(req.Receipt) != "" {
		if len(v.cfg.StatusKeys.Keys) == 0 {
			return nil, fmt.Errorf("%w: checking a receipt needs StatusKeys", ErrConfig)
		}
		rc, err := artifact.ParseReceipt(req.Receipt, v.cfg.StatusKeys)
		switch {
		case errors.Is(err, artifact.ErrBadSignature):
			return r.reject(CodeReceiptUntrusted, "the receipt is not signed by a CA status key: %v", err), nil
		case err != nil:
			return r.reject(CodeMalformed, "receipt: %v", err), nil
		}
		reg, exp := rc.RegisteredAt.UTC(), rc.ExpiresAt.UTC()
		r.RegisteredAt, r.RegistrationExpiresAt = &reg, &exp
		switch {
		case rc.SHA256 != req.Digest:
			return r.reject(CodeReceiptMismatch, "the receipt is for artifact %s, not %s", rc.SHA256, req.Digest), nil
		case !strings.EqualFold(rc.Serial, r.Serial):
			return r.reject(CodeReceiptMismatch, "the receipt is for certificate %s, the signature's is %s", rc.Serial, r.Serial), nil
		case rc.SignatureSHA256 != sig.Hash():
			return r.reject(CodeReceiptMismatch, "the receipt is for another signature (sha256 %s, this one is %s)", rc.SignatureSHA256, sig.Hash()), nil
		case rc.SPIFFEID != "" && (len(sig.Leaf().URIs) != 1 || sig.Leaf().URIs[0].String() != rc.SPIFFEID):
			return r.reject(CodeReceiptMismatch, "the receipt is for %s, not the signing certificate's SPIFFE ID", rc.SPIFFEID), nil
		case exp.Before(now):
			return r.reject(CodeRegistrationExpired, "the registration expired at %s; the CA may have pruned the certificate's history",
				exp.Format(time.RFC3339)), nil
		case reg.After(now.Add(MaxClockSkew)):
			return r.reject(CodeReceiptMismatch, "the receipt's registered_at %s is in the future", reg.Format(time.RFC3339)), nil
		}
		// A registered_at ahead of the clock (by at most MaxClockSkew:
		// the CA's clock is ahead) is checked as now is.
		at, src = reg.Truncate(time.Second), AtReceipt
	}
	res, err := v.certificate(ctx, sig.Chain, instant{at: at, src: src, now: now})
	if err != nil {
		return nil, err
	}
	res.SHA256, res.Name = r.SHA256, r.Name
	res.RegisteredAt, res.RegistrationExpiresAt = r.RegisteredAt, r.RegistrationExpiresAt
	return res, nil
}
