package artifact

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/workerca/workerca/ca"
)

// SignatureType is the "typ" header of an artifact signature.
const SignatureType = "workerca-artifact+jws"

// MaxSignatureBytes bounds a compact signature: a payload of a digest and
// a name, and an x5c chain of a few certificates.
const MaxSignatureBytes = 32 << 10

// MaxNameLength bounds Payload.Name.
const MaxNameLength = 256

// Errors of package artifact. Callers test with errors.Is.
var (
	// ErrMalformed means a signature or receipt is not a well-formed
	// compact JWS of the expected type and payload.
	ErrMalformed = errors.New("artifact: malformed")
	// ErrBadSignature means the JWS does not verify with the key it must
	// verify with (the x5c leaf's, or the CA's status key for a receipt).
	ErrBadSignature = errors.New("artifact: signature does not verify")
	// ErrDigest means a digest is not 64 lowercase hex digits, or differs
	// from the artifact's.
	ErrDigest = errors.New("artifact: digest mismatch")
)

// Payload is what a worker signs.
type Payload struct {
	// SHA256 is the artifact's SHA-256 digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
	// Name optionally names the artifact (a file name, an image
	// reference); at most MaxNameLength bytes of UTF-8.
	Name string `json:"name,omitempty"`
}

// Check reports whether p is well-formed.
func (p Payload) Check() error {
	if err := CheckDigest(p.SHA256); err != nil {
		return err
	}
	if len(p.Name) > MaxNameLength {
		return fmt.Errorf("%w: name is longer than %d bytes", ErrMalformed, MaxNameLength)
	}
	if strings.ContainsFunc(p.Name, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\uFFFD' }) {
		return fmt.Errorf("%w: name has control characters or invalid UTF-8", ErrMalformed)
	}
	return nil
}

// CheckDigest reports whether s is a SHA-256 digest in workerca's form:
// 64 lowercase hex digits.
func CheckDigest(s string) error {
	if len(s) != 2*sha256.Size {
		return fmt.Errorf("%w: sha256 must be 64 lowercase hex digits, got %d characters", ErrDigest, len(s))
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%w: sha256 must be 64 lowercase hex digits", ErrDigest)
		}
	}
	return nil
}

// Signer is a worker's key and certificate chain (leaf first).
type Signer struct {
	// Key is the private key of Chain[0]: a key in memory, or any
	// crypto.Signer, such as the TPM key of agent.LoadCertificate.
	Key crypto.Signer
	// Chain is the worker certificate and its intermediates, leaf first;
	// it goes into x5c. The root is best left out.
	Chain []*x509.Certificate
}

// Sign signs p as a compact JWS with the algorithm of the key.
func Sign(s Signer, p Payload) (string, error) {
	if err := p.Check(); err != nil {
		return "", err
	}
	if s.Key == nil || len(s.Chain) == 0 {
		return "", errors.New("artifact: a key and its certificate chain are required")
	}
	if !publicKeyEqual(s.Key.Public(), s.Chain[0].PublicKey) {
		return "", errors.New("artifact: the key is not the leaf certificate's")
	}
	alg, err := ca.JOSEAlgorithm(s.Key.Public())
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	x5c := make([]string, len(s.Chain))
	for i, c := range s.Chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	opts := (&jose.SignerOptions{}).WithType(SignatureType).WithHeader("x5c", x5c)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: joseKey(s.Key)}, opts)
	if err != nil {
		return "", fmt.Errorf("artifact: signer: %w", err)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("artifact: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// Signature is a parsed artifact signature whose JWS verified with the key
// of its x5c leaf. Nothing about the chain's trust is known yet.
type Signature struct {
	// Payload is the signed payload.
	Payload Payload
	// Chain is the x5c chain, leaf first, as the signer sent it.
	Chain []*x509.Certificate
	// Algorithm is the JWS "alg".
	Algorithm jose.SignatureAlgorithm
	// Compact is the signature as parsed.
	Compact string
}

// Leaf returns the signing certificate.
func (s *Signature) Leaf() *x509.Certificate { return s.Chain[0] }

// Hash returns the lowercase hex SHA-256 of the compact signature, the
// key by which the CA records a registration.
func (s *Signature) Hash() string {
	sum := sha256.Sum256([]byte(s.Compact))
	return hex.EncodeToString(sum[:])
}

// header is the protected header of an artifact signature as sent.
type header struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	X5C  []string        `json:"x5c"`
	Crit json.RawMessage `json:"crit"`
}

// Parse parses a compact artifact signature and verifies it with the
// public key of its x5c leaf, with the one algorithm that key allows.
// "typ", when present, must be SignatureType; "crit" is refused (RFC 7515
// §4.1.11: we understand no extensions).
func Parse(compact string) (*Signature, error) {
	compact = strings.TrimSpace(compact)
	if len(compact) > MaxSignatureBytes {
		return nil, fmt.Errorf("%w: signature is larger than %d bytes", ErrMalformed, MaxSignatureBytes)
	}
	h, err := protectedHeader(compact)
	if err != nil {
		return nil, err
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, SignatureType) {
		return nil, fmt.Errorf("%w: typ %q is not %s", ErrMalformed, h.Typ, SignatureType)
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	if len(h.X5C) == 0 {
		return nil, fmt.Errorf("%w: x5c (the signer's chain) is missing", ErrMalformed)
	}
	chain := make([]*x509.Certificate, len(h.X5C))
	for i, s := range h.X5C {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d] is not base64: %v", ErrMalformed, i, err)
		}
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %v", ErrMalformed, i, err)
		}
	}
	alg, err := ca.JOSEAlgorithm(chain[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: x5c leaf key: %v", ErrMalformed, err)
	}
	if h.Alg != string(alg) {
		return nil, fmt.Errorf("%w: alg %q does not go with the leaf's key (want %s)", ErrBadSignature, h.Alg, alg)
	}
	obj, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{alg})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	raw, err := obj.Verify(chain[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: payload: trailing data", ErrMalformed)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &Signature{Payload: p, Chain: chain, Algorithm: alg, Compact: compact}, nil
}

// joseKey is key as go-jose takes it: the standard library's private
// keys as they are, any other crypto.Signer (a TPM or KMS key) as an
// opaque signer, which go-jose would otherwise refuse.
func joseKey(key crypto.Signer) any {
	switch key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		return key
	}
	return cryptosigner.Opaque(key)
}

// protectedHeader decodes the first part of a compact JWS.
func protectedHeader(compact string) (*header, error) {
	first, _, ok := strings.Cut(compact, ".")
	if !ok || strings.Count(compact, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (three dot-separated parts)", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header is not base64url: %v", ErrMalformed, err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	return &h, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
