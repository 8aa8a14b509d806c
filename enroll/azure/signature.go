package azure

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// Algorithm identifiers accepted in the SignerInfo (RFC 5652 §5.3).
// Azure puts sha256WithRSAEncryption (RFC 8017 appendix A.2.4) in the
// digestAlgorithm field, where a digest OID belongs; both are read as
// SHA-256. The signatureAlgorithm field says rsaEncryption.
var (
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	acceptedDigestAlgs    = []asn1.ObjectIdentifier{oidSHA256, oidSHA256WithRSA}
	acceptedSignatureAlgs = []asn1.ObjectIdentifier{oidRSAEncryption, oidSHA256WithRSA}
)

// signed is a parsed PKCS#7 SignedData with one signer.
type signed struct {
	p7      *pkcs7.PKCS7
	signer  *x509.Certificate
	content []byte
}

// parseSigned parses der (BER is accepted, as smallstep/pkcs7 converts it)
// and finds the single signer's certificate inside it. Errors are
// ErrMalformed material.
func parseSigned(der []byte) (*signed, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#7 SignedData: %w", err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("PKCS#7 has %d signers, want 1", len(p7.Signers))
	}
	if len(p7.Content) == 0 {
		return nil, errors.New("PKCS#7 carries no content (detached signature)")
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, errors.New("PKCS#7 does not carry the signer's certificate")
	}
	return &signed{p7: p7, signer: signer, content: p7.Content}, nil
}

// verifySignature checks the one SignerInfo: no signed attributes, an
// RSA key, and an RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2) over the
// SHA-256 of the content octets (RFC 5652 §5.4: without signed
// attributes the message digest is computed over the content itself).
// Errors are ErrSignature material.
//
// This is done here rather than with pkcs7.Verify so that only this one
// algorithm is accepted, whatever else the library allows.
func (s *signed) verifySignature() error {
	si := s.p7.Signers[0]
	if !oneOf(si.DigestAlgorithm.Algorithm, acceptedDigestAlgs) {
		return fmt.Errorf("digest algorithm %v is not SHA-256", si.DigestAlgorithm.Algorithm)
	}
	if !oneOf(si.DigestEncryptionAlgorithm.Algorithm, acceptedSignatureAlgs) {
		return fmt.Errorf("signature algorithm %v is not RSA", si.DigestEncryptionAlgorithm.Algorithm)
	}
	if len(si.AuthenticatedAttributes) > 0 {
		return errors.New("signed attributes are present; Azure signs the content directly")
	}
	pub, ok := s.signer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("signer key is %T, not RSA", s.signer.PublicKey)
	}
	sum := sha256.Sum256(s.content)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], si.EncryptedDigest); err != nil {
		return fmt.Errorf("RSA PKCS#1 v1.5 SHA-256: %w", err)
	}
	return nil
}

func oneOf(oid asn1.ObjectIdentifier, set []asn1.ObjectIdentifier) bool {
	for _, o := range set {
		if oid.Equal(o) {
			return true
		}
	}
	return false
}
