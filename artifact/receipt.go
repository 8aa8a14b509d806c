package artifact

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/ca"
)

// ReceiptType is the "typ" header of a receipt.
const ReceiptType = "workerca-receipt+jws"

// Receipt is what the CA vouches for when it registers a signature: that
// the certificate Serial, valid and unrevoked at RegisteredAt, signed the
// artifact SHA256.
type Receipt struct {
	// SHA256 is the artifact's digest.
	SHA256 string `json:"sha256"`
	// Serial is the signing certificate's serial (lowercase hex).
	Serial string `json:"serial"`
	// SPIFFEID is the signing certificate's SPIFFE ID.
	SPIFFEID string `json:"spiffe_id"`
	// RegisteredAt is the CA's time of registration: the trusted signing
	// time.
	RegisteredAt time.Time `json:"registered_at"`
	// ExpiresAt is when the registration ends; the CA keeps the
	// certificate's history until then.
	ExpiresAt time.Time `json:"expires_at"`
	// SignatureSHA256 is the lowercase hex SHA-256 of the compact
	// signature registered (Signature.Hash).
	SignatureSHA256 string `json:"signature_sha256"`
}

// ReceiptSigner signs receipts with the CA's status key.
type ReceiptSigner struct {
	jose *ca.JOSESigner
}

// NewReceiptSigner returns a signer for key (P-256, P-384, Ed25519 or
// RSA ≥ 2048). Its kid is the key's RFC 7638 thumbprint, as in the
// status JWKS.
func NewReceiptSigner(key crypto.Signer) (*ReceiptSigner, error) {
	j, err := ca.NewJOSESigner(key, ReceiptType)
	if err != nil {
		return nil, fmt.Errorf("artifact: receipt signer: %w", err)
	}
	return &ReceiptSigner{jose: j}, nil
}

// Sign returns r as a compact JWS. Times are truncated to the second, as
// the receipt carries them.
func (s *ReceiptSigner) Sign(r Receipt) (string, error) {
	r.RegisteredAt = r.RegisteredAt.UTC().Truncate(time.Second)
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Second)
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	return s.jose.SignCompact(b)
}

// ParseReceipt verifies a compact receipt with one of keys (the key its
// kid names, or a key without a kid) and returns its claims.
// A receipt signed by any other key is ErrBadSignature.
func ParseReceipt(compact string, keys jose.JSONWebKeySet) (*Receipt, error) {
	compact = strings.TrimSpace(compact)
	if len(compact) > MaxSignatureBytes {
		return nil, fmt.Errorf("%w: receipt is larger than %d bytes", ErrMalformed, MaxSignatureBytes)
	}
	h, err := protectedHeader(compact)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(h.Typ, ReceiptType) {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrMalformed, h.Typ, ReceiptType)
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	obj, err := jose.ParseSignedCompact(compact, ca.JOSEAlgorithms())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	raw, err := ca.VerifyWithKeySet(obj, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: receipt payload: %v", ErrMalformed, err)
	}
	if err := CheckDigest(r.SHA256); err != nil {
		return nil, fmt.Errorf("%w: receipt: %v", ErrMalformed, err)
	}
	if r.Serial == "" || r.RegisteredAt.IsZero() || r.ExpiresAt.IsZero() {
		return nil, fmt.Errorf("%w: receipt lacks serial, registered_at or expires_at", ErrMalformed)
	}
	return &r, nil
}
