package ocsp

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxNonceLen is the longest nonce, in octets, that ParseRequest accepts and
// Responder.Sign echoes. RFC 9654 §2.1, which obsoletes the 32-octet cap of
// RFC 8954, defines Nonce ::= OCTET STRING(SIZE(1..128)); a request whose
// nonce is outside that size is malformed.
const MaxNonceLen = 128

// Context-specific tags of OCSP requests and responses: the EXPLICIT ones
// are constructed, [n] IMPLICIT NULL is primitive.
const (
	tagExplicit0 cbasn1.Tag = 0xa0 // [0] EXPLICIT
	tagExplicit1 cbasn1.Tag = 0xa1 // [1] EXPLICIT, and revoked [1] IMPLICIT RevokedInfo
	tagExplicit2 cbasn1.Tag = 0xa2 // [2] EXPLICIT
	tagNULL0     cbasn1.Tag = 0x80 // good [0] IMPLICIT NULL
	tagNULL2     cbasn1.Tag = 0x82 // unknown [2] IMPLICIT UnknownInfo (NULL)
)

// Request is one parsed OCSP request: the CertID it asks about (RFC 6960
// §4.1.1) and the nonce it carries, if any, as ParseRequest returns it.
type Request struct {
	// HashAlgorithm is the CertID hash: crypto.SHA1, crypto.SHA256,
	// crypto.SHA384 or crypto.SHA512. A response answers with the same.
	HashAlgorithm crypto.Hash
	// IssuerNameHash is the hash of the issuer's DER subject name.
	IssuerNameHash []byte
	// IssuerKeyHash is the hash of the issuer's subjectPublicKey BIT STRING
	// value.
	IssuerKeyHash []byte
	// SerialNumber is the serial number of the certificate asked about. It
	// is never negative.
	SerialNumber *big.Int
	// Nonce holds the octets of the request's id-pkix-ocsp-nonce extension
	// (RFC 9654 §2.1), 1 to MaxNonceLen of them, or is nil when the request
	// has no nonce. Echo it in Response.Nonce to bind the answer to the
	// request.
	Nonce []byte
}

// ParseRequest parses a DER OCSPRequest (RFC 6960 §4.1.1). Every error wraps
// ErrMalformed, which the caller answers with
// ErrorResponse(MalformedRequest).
//
// The request must be DER with no trailing data, and is held to these rules:
//
//   - requestList holds exactly one Request. RFC 5019 §2.1.1 (and RFC 9919,
//     which obsoletes it) has clients send only one; answering several would
//     mean one signed response covering several certificates, which this
//     package does not produce.
//   - The CertID hash is SHA-1, SHA-256, SHA-384 or SHA-512, its parameters
//     are absent or NULL, and both issuer hashes have that hash's length.
//   - The serial number is a DER INTEGER and is not negative.
//   - A nonce extension's extnValue is a DER OCTET STRING (RFC 9654 §2.1)
//     of 1 to MaxNonceLen octets.
//   - No extension appears twice in the same list.
//   - A critical extension other than the nonce, in requestExtensions or in
//     singleRequestExtensions, makes the request malformed: RFC 6960 §4.1.2
//     has unrecognized extensions ignored unless they are critical, and
//     malformedRequest is the only status that fits. Unknown non-critical
//     extensions are ignored.
//   - version, if present, is v1.
//
// A signed request is accepted and its optionalSignature ignored, as RFC
// 5019 §2.1.2 and RFC 9919 §2.1.2 allow a responder; requestorName is
// ignored too (RFC 9919 §2.1.2). The returned Request shares no memory with
// der.
func ParseRequest(der []byte) (*Request, error) {
	in := cryptobyte.String(der)
	var ocspRequest, tbs cryptobyte.String
	if !in.ReadASN1(&ocspRequest, cbasn1.SEQUENCE) {
		return nil, malformed("not a DER OCSPRequest")
	}
	if !in.Empty() {
		return nil, malformed("trailing data after OCSPRequest")
	}
	if !ocspRequest.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, malformed("bad tbsRequest")
	}
	// optionalSignature [0] EXPLICIT Signature OPTIONAL: skipped unverified.
	if !ocspRequest.SkipOptionalASN1(tagExplicit0) || !ocspRequest.Empty() {
		return nil, malformed("bad optionalSignature")
	}

	var version cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&version, &hasVersion, tagExplicit0) {
		return nil, malformed("bad version")
	}
	if hasVersion {
		var v int64
		if !version.ReadASN1Integer(&v) || !version.Empty() || v != 0 {
			return nil, malformed("version is not v1")
		}
	}
	// requestorName [1] EXPLICIT GeneralName OPTIONAL: ignored (RFC 9919
	// §2.1.2 has responders treat it as absent on unsigned requests).
	if !tbs.SkipOptionalASN1(tagExplicit1) {
		return nil, malformed("bad requestorName")
	}
	var list, single cryptobyte.String
	if !tbs.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil, malformed("bad requestList")
	}
	if list.Empty() {
		return nil, malformed("empty requestList")
	}
	if !list.ReadASN1(&single, cbasn1.SEQUENCE) {
		return nil, malformed("bad Request in requestList")
	}
	if list.PeekASN1Tag(cbasn1.SEQUENCE) {
		return nil, malformed("more than one Request in requestList (RFC 5019 §2.1.1)")
	}
	if !list.Empty() {
		return nil, malformed("unexpected data in requestList")
	}
	var exts cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&exts, &hasExts, tagExplicit2) {
		return nil, malformed("bad requestExtensions")
	}
	if !tbs.Empty() {
		return nil, malformed("unexpected data in tbsRequest")
	}

	req, err := parseSingleRequest(single)
	if err != nil {
		return nil, err
	}
	if hasExts {
		nonce, err := parseRequestExtensions(exts)
		if err != nil {
			return nil, err
		}
		req.Nonce = nonce
	}
	return req, nil
}

// MatchesIssuer reports whether r asks about a certificate issued by issuer:
// whether IssuerNameHash and IssuerKeyHash are the hashes, under
// r.HashAlgorithm, of issuer's DER subject and of the value of its
// subjectPublicKey BIT STRING (RFC 6960 §4.1.1). The comparison is not
// constant-time; the hashes are public.
func (r *Request) MatchesIssuer(issuer *x509.Certificate) bool {
	if r == nil || issuer == nil {
		return false
	}
	h, err := issuerHashes(issuer, r.HashAlgorithm)
	if err != nil {
		return false
	}
	return bytes.Equal(h.name, r.IssuerNameHash) && bytes.Equal(h.key, r.IssuerKeyHash)
}

// parseSingleRequest parses the contents of a Request: its CertID and
// optional singleRequestExtensions, none of which this package understands.
func parseSingleRequest(single cryptobyte.String) (*Request, error) {
	var certID, exts cryptobyte.String
	var hasExts bool
	if !single.ReadASN1(&certID, cbasn1.SEQUENCE) {
		return nil, malformed("bad CertID")
	}
	if !single.ReadOptionalASN1(&exts, &hasExts, tagExplicit0) || !single.Empty() {
		return nil, malformed("bad singleRequestExtensions")
	}
	if hasExts {
		list, err := parseExtensions(exts)
		if err != nil {
			return nil, err
		}
		for _, e := range list {
			if e.critical {
				return nil, malformed("unsupported critical singleRequestExtension")
			}
		}
	}

	var alg, oid, nameHash, keyHash cryptobyte.String
	if !certID.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, malformed("bad CertID hashAlgorithm")
	}
	h, ok := hashByOID(string(oid))
	if !ok {
		return nil, malformed("unsupported CertID hash algorithm")
	}
	if !alg.Empty() && string(alg) != derNULL {
		return nil, malformed("CertID hash algorithm parameters are not absent or NULL")
	}
	if !certID.ReadASN1(&nameHash, cbasn1.OCTET_STRING) || !certID.ReadASN1(&keyHash, cbasn1.OCTET_STRING) {
		return nil, malformed("bad CertID issuer hashes")
	}
	if len(nameHash) != h.Size() || len(keyHash) != h.Size() {
		return nil, malformed(fmt.Sprintf("CertID issuer hashes are not %d octets long", h.Size()))
	}
	serial := new(big.Int)
	if !certID.ReadASN1Integer(serial) {
		return nil, malformed("bad CertID serialNumber")
	}
	if !certID.Empty() {
		return nil, malformed("unexpected data in CertID")
	}
	if serial.Sign() < 0 {
		return nil, malformed("negative CertID serialNumber")
	}
	return &Request{
		HashAlgorithm:  h,
		IssuerNameHash: bytes.Clone(nameHash),
		IssuerKeyHash:  bytes.Clone(keyHash),
		SerialNumber:   serial,
	}, nil
}

// parseRequestExtensions parses requestExtensions and returns the nonce's
// octets, or nil when there is no nonce.
func parseRequestExtensions(explicit cryptobyte.String) ([]byte, error) {
	list, err := parseExtensions(explicit)
	if err != nil {
		return nil, err
	}
	var nonce []byte
	for _, e := range list {
		if e.id != oidNonce {
			if e.critical {
				return nil, malformed("unsupported critical requestExtension")
			}
			continue
		}
		// RFC 9654 §2.1: extnValue holds the DER of Nonce, an OCTET STRING.
		var n cryptobyte.String
		v := e.value
		if !v.ReadASN1(&n, cbasn1.OCTET_STRING) || !v.Empty() {
			return nil, malformed("nonce extnValue is not an OCTET STRING (RFC 9654 §2.1)")
		}
		if len(n) < 1 || len(n) > MaxNonceLen {
			return nil, malformed(fmt.Sprintf("nonce of %d octets; RFC 9654 §2.1 allows 1 to %d", len(n), MaxNonceLen))
		}
		nonce = bytes.Clone(n)
	}
	return nonce, nil
}

// extension is one parsed Extension (RFC 5280 §4.1).
type extension struct {
	id       string // DER object identifier, tag and length included
	critical bool
	value    cryptobyte.String // contents of extnValue
}

// parseExtensions parses the contents of an explicitly tagged Extensions,
// SEQUENCE SIZE (1..MAX) OF Extension, refusing an empty list and an
// extension that appears twice.
func parseExtensions(explicit cryptobyte.String) ([]extension, error) {
	var seq cryptobyte.String
	if !explicit.ReadASN1(&seq, cbasn1.SEQUENCE) || !explicit.Empty() {
		return nil, malformed("bad Extensions")
	}
	if seq.Empty() {
		return nil, malformed("empty Extensions")
	}
	var list []extension
	var seen map[string]bool // made at the second extension; linear in the count
	for !seq.Empty() {
		var ext, id cryptobyte.String
		var e extension
		if !seq.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1Element(&id, cbasn1.OBJECT_IDENTIFIER) || !validOID(id) {
			return nil, malformed("bad Extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.critical) {
			return nil, malformed("bad Extension critical flag")
		}
		if !ext.ReadASN1(&e.value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, malformed("bad Extension extnValue")
		}
		e.id = string(id)
		if len(list) > 0 {
			if seen == nil {
				seen = map[string]bool{list[0].id: true}
			}
			if seen[e.id] {
				return nil, malformed("extension appears twice")
			}
			seen[e.id] = true
		}
		list = append(list, e)
	}
	return list, nil
}

// validOID reports whether element, a DER OBJECT IDENTIFIER with its tag
// and length, has well-formed contents: at least one subidentifier, each in
// minimal base-128 form and the last one complete (X.690 §8.19). Unlike
// cryptobyte's ReadASN1ObjectIdentifier it accepts arcs of any size, so an
// unknown extension with a large arc (a 2.25 UUID OID) is not refused.
func validOID(element cryptobyte.String) bool {
	var contents cryptobyte.String
	if !element.ReadASN1(&contents, cbasn1.OBJECT_IDENTIFIER) || len(contents) == 0 {
		return false
	}
	start := true
	for _, c := range contents {
		if start && c == 0x80 {
			return false // leading 0x80 pads a subidentifier
		}
		start = c&0x80 == 0
	}
	return start
}

// malformed returns an error wrapping ErrMalformed.
func malformed(why string) error {
	return fmt.Errorf("%w: %s", ErrMalformed, why)
}
