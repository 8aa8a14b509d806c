package awsiid

import (
	"bytes"
	"crypto"
	"crypto/dsa" // deprecated, but AWS signs /pkcs7 with DSA-SHA1
	"crypto/rsa"
	_ "crypto/sha1" // AWS's /pkcs7 and older /rsa2048 digests
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/smallstep/pkcs7"
)

// Object identifiers, RFC 5652 (CMS), RFC 8017 (PKCS #1), RFC 3279 (DSA)
// and RFC 5754 (SHA-2 in CMS).
var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidAttrContentType    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSHA1               = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidRSAEncryption      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidDSA                = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 1}
	oidDSAWithSHA1        = asn1.ObjectIdentifier{1, 2, 840, 10040, 4, 3}
	digestAlgorithms      = map[string]crypto.Hash{oidSHA1.String(): crypto.SHA1, oidSHA256.String(): crypto.SHA256, oidSHA384.String(): crypto.SHA384, oidSHA512.String(): crypto.SHA512}
	rsaSignatureAlgorithm = map[string]crypto.Hash{oidSHA1WithRSA.String(): crypto.SHA1, oidSHA256WithRSA.String(): crypto.SHA256, oidSHA384WithRSA.String(): crypto.SHA384, oidSHA512WithRSA.String(): crypto.SHA512}
)

// signedDocument is a parsed PKCS#7 SignedData (RFC 2315 §9, RFC 5652
// §5) reduced to what verifying its one signer needs. The certificates a
// PKCS#7 may carry are ignored: trust comes only from the verifier's
// certificates.
type signedDocument struct {
	content []byte      // the encapsulated content: the document
	signed  []byte      // what the signature covers: content, or the DER signed attributes
	hash    crypto.Hash // digest algorithm
	dsa     bool        // DSA (FormPKCS7DSA) rather than RSA PKCS#1 v1.5 (FormRSA2048)
	sig     []byte      // the signature value
}

// form is the Form this signature belongs to.
func (s *signedDocument) form() string {
	if s.dsa {
		return FormPKCS7DSA
	}
	return FormRSA2048
}

// parsePKCS7 parses a BER or DER PKCS#7 SignedData with exactly one
// signer and embedded content, and checks the signed attributes (RFC 5652
// §5.4, §11.1-11.2): content-type is id-data and message-digest is the
// content's digest. The signature itself is checked by verify.
func parsePKCS7(der []byte) (*signedDocument, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs7: %v", ErrMalformed, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: pkcs7: want exactly one signer, got %d", ErrMalformed, len(p7.Signers))
	}
	if len(p7.Content) == 0 {
		return nil, fmt.Errorf("%w: pkcs7: no content", ErrMalformed)
	}
	si := p7.Signers[0]
	s := &signedDocument{content: p7.Content, signed: p7.Content, sig: si.EncryptedDigest}

	var ok bool
	if s.hash, ok = digestAlgorithms[si.DigestAlgorithm.Algorithm.String()]; !ok {
		return nil, fmt.Errorf("%w: pkcs7: unsupported digest algorithm %v", ErrSignature, si.DigestAlgorithm.Algorithm)
	}
	switch alg := si.DigestEncryptionAlgorithm.Algorithm; {
	case alg.Equal(oidRSAEncryption):
	case alg.Equal(oidDSA):
		s.dsa = true
	case alg.Equal(oidDSAWithSHA1):
		s.dsa = true
		if s.hash != crypto.SHA1 {
			return nil, fmt.Errorf("%w: pkcs7: dsaWithSHA1 with digest %v", ErrSignature, s.hash)
		}
	default:
		h, ok := rsaSignatureAlgorithm[alg.String()]
		if !ok {
			return nil, fmt.Errorf("%w: pkcs7: unsupported signature algorithm %v", ErrSignature, alg)
		}
		if h != s.hash {
			return nil, fmt.Errorf("%w: pkcs7: signature algorithm %v with digest %v", ErrSignature, alg, s.hash)
		}
	}

	if len(si.AuthenticatedAttributes) > 0 {
		var contentType asn1.ObjectIdentifier
		if err := p7.UnmarshalSignedAttribute(oidAttrContentType, &contentType); err != nil {
			return nil, fmt.Errorf("%w: pkcs7: content-type attribute: %v", ErrMalformed, err)
		}
		if !contentType.Equal(oidData) {
			return nil, fmt.Errorf("%w: pkcs7: content type %v, want id-data", ErrMalformed, contentType)
		}
		var digest []byte
		if err := p7.UnmarshalSignedAttribute(oidAttrMessageDigest, &digest); err != nil {
			return nil, fmt.Errorf("%w: pkcs7: message-digest attribute: %v", ErrMalformed, err)
		}
		h := s.hash.New()
		h.Write(s.content)
		if !bytes.Equal(h.Sum(nil), digest) {
			return nil, fmt.Errorf("%w: pkcs7: message digest does not match the content", ErrSignature)
		}
		attrs := make([]attribute, len(si.AuthenticatedAttributes))
		for i, a := range si.AuthenticatedAttributes {
			attrs[i] = attribute{Type: a.Type, Value: a.Value}
		}
		if s.signed, err = marshalSignedAttributes(attrs); err != nil {
			return nil, fmt.Errorf("%w: pkcs7: signed attributes: %v", ErrMalformed, err)
		}
	}
	return s, nil
}

// attribute is one CMS Attribute (RFC 5652 §5.3).
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

// marshalSignedAttributes returns the DER encoding of the signed
// attributes as a SET OF, which is what the signature covers (RFC 5652
// §5.4: the [0] IMPLICIT tag is replaced by the SET OF tag, and DER sorts
// the elements).
func marshalSignedAttributes(attrs []attribute) ([]byte, error) {
	seq, err := asn1.Marshal(struct {
		A []attribute `asn1:"set"`
	}{A: attrs})
	if err != nil {
		return nil, err
	}
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(seq, &outer); err != nil {
		return nil, err
	}
	return outer.Bytes, nil
}

// verify reports whether pub made the signature.
func (s *signedDocument) verify(pub any) bool {
	h := s.hash.New()
	h.Write(s.signed)
	digest := h.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return !s.dsa && rsa.VerifyPKCS1v15(k, s.hash, digest, s.sig) == nil
	case *dsa.PublicKey:
		return s.dsa && verifyDSA(k, digest, s.sig)
	}
	return false
}

// verifyDSA checks a DER Dss-Sig-Value (RFC 3279 §2.2.2) over digest.
func verifyDSA(k *dsa.PublicKey, digest, sig []byte) bool {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil || k.Q == nil || k.Q.Sign() <= 0 {
		return false
	}
	// FIPS 186-4 §4.6: use the leftmost min(N, outlen) bits of the digest.
	if n := (k.Q.BitLen() + 7) / 8; len(digest) > n {
		digest = digest[:n]
	}
	return dsa.Verify(k, digest, rs.R, rs.S)
}

// verifyRSASHA256 reports whether sig is an RSA PKCS#1 v1.5 SHA-256
// signature by pub over doc (the /signature form).
func verifyRSASHA256(pub any, doc, sig []byte) bool {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return false
	}
	h := crypto.SHA256.New()
	h.Write(doc)
	return rsa.VerifyPKCS1v15(k, crypto.SHA256, h.Sum(nil), sig) == nil
}
