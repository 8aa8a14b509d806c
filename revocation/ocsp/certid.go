package ocsp

import (
	"crypto"
	"crypto/sha1" // RFC 6960 CertIDs may, and the byKey ResponderID must, use SHA-1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DER encodings (tag, length and contents) of the object identifiers this
// package reads or writes. They are constants so that parsing compares bytes
// and no package variable holds a mutable asn1.ObjectIdentifier.
const (
	oidSHA1   = "\x06\x05\x2b\x0e\x03\x02\x1a"                 // 1.3.14.3.2.26
	oidSHA256 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" // 2.16.840.1.101.3.4.2.1
	oidSHA384 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02" // 2.16.840.1.101.3.4.2.2
	oidSHA512 = "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03" // 2.16.840.1.101.3.4.2.3

	// oidNonce is id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2 (RFC 6960 §4.4.1).
	oidNonce = "\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x02"
	// oidBasic is id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1 (RFC 6960 §4.2.1).
	oidBasic = "\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x01"

	oidECDSAWithSHA256 = "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"     // 1.2.840.10045.4.3.2
	oidECDSAWithSHA384 = "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x03"     // 1.2.840.10045.4.3.3
	oidECDSAWithSHA512 = "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x04"     // 1.2.840.10045.4.3.4
	oidSHA256WithRSA   = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b" // 1.2.840.113549.1.1.11
	oidEd25519         = "\x06\x03\x2b\x65\x70"                         // 1.3.101.112

	// derNULL is an ASN.1 NULL, the parameters of a CertID hash algorithm
	// and of sha256WithRSAEncryption.
	derNULL = "\x05\x00"
)

// hashOID returns the DER object identifier of a CertID hash algorithm, and
// false for a hash this package does not accept in a CertID.
func hashOID(h crypto.Hash) (string, bool) {
	switch h {
	case crypto.SHA1:
		return oidSHA1, true
	case crypto.SHA256:
		return oidSHA256, true
	case crypto.SHA384:
		return oidSHA384, true
	case crypto.SHA512:
		return oidSHA512, true
	}
	return "", false
}

// hashByOID is the inverse of hashOID.
func hashByOID(oid string) (crypto.Hash, bool) {
	switch oid {
	case oidSHA1:
		return crypto.SHA1, true
	case oidSHA256:
		return crypto.SHA256, true
	case oidSHA384:
		return crypto.SHA384, true
	case oidSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

// digest hashes data with h, one of the hashes hashOID accepts. It does not
// go through crypto.Hash.New, which panics for a hash that is not linked in.
func digest(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(data)
		return s[:]
	case crypto.SHA256:
		s := sha256.Sum256(data)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return s[:]
	case crypto.SHA512:
		s := sha512.Sum512(data)
		return s[:]
	}
	return nil
}

// certIDHashes are the two issuer hashes of a CertID (RFC 6960 §4.1.1).
type certIDHashes struct {
	name []byte // hash of the issuer's DER subject
	key  []byte // hash of the issuer's subjectPublicKey BIT STRING contents
}

// issuerHashes computes the CertID hashes of issuer under h: issuerNameHash
// over the DER of issuer's subject, issuerKeyHash over the value of the
// subjectPublicKey BIT STRING, without its tag, length and unused-bits octet
// (RFC 6960 §4.1.1).
func issuerHashes(issuer *x509.Certificate, h crypto.Hash) (certIDHashes, error) {
	if _, ok := hashOID(h); !ok {
		return certIDHashes{}, fmt.Errorf("unsupported CertID hash %v", h)
	}
	key, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return certIDHashes{}, err
	}
	return certIDHashes{name: digest(h, issuer.RawSubject), key: digest(h, key)}, nil
}

// subjectPublicKeyBits returns the contents of the subjectPublicKey BIT
// STRING of a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	in := cryptobyte.String(spki)
	var info cryptobyte.String
	var bits []byte
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.SkipASN1(cbasn1.SEQUENCE) ||
		!info.ReadASN1BitStringAsBytes(&bits) || !info.Empty() {
		return nil, fmt.Errorf("cannot parse subjectPublicKeyInfo")
	}
	return bits, nil
}
