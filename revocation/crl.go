package revocation

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/url"
	"slices"
	"time"

	"github.com/workerca/workerca/internal/crlscope"
)

// ErrInvalidCRL reports a CRLRequest that BuildCRL refuses to sign; the
// wrapping error says which field is wrong.
var ErrInvalidCRL = errors.New("revocation: invalid CRL request")

// CRL entry object identifiers (RFC 5280 §5.3.1, §5.3.2); the
// issuingDistributionPoint's is crlscope.OID, which relying parties read.
var (
	oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
)

// CRLReason values (RFC 5280 §5.3.1) that BuildCRL treats specially.
const (
	crlReasonUnspecified   = 0
	crlReasonUnassigned    = 7 // value 7 is not used
	crlReasonRemoveFromCRL = 8 // only in delta CRLs
	crlReasonMax           = 10
)

// crlMaxOctets bounds the CRL number and serial numbers: RFC 5280 §5.2.3 and
// §4.1.2.2 allow at most 20 octets of DER INTEGER content, so a positive
// value must be below 2^159.
const crlMaxOctets = 20

// CRLEntry is one revoked certificate on a CRL.
type CRLEntry struct {
	// Serial is the revoked certificate's serial number, positive and at
	// most 20 octets (RFC 5280 §4.1.2.2).
	Serial *big.Int
	// RevokedAt is the revocationDate: when the CA processed the
	// revocation. It must not be after the CRL's ThisUpdate.
	RevokedAt time.Time
	// Reason is the RFC 5280 §5.3.1 CRLReason. 0 (unspecified) is omitted
	// from the entry, as §5.3.1 says the extension SHOULD then be absent;
	// 7 (unassigned) and 8 (removeFromCRL, delta CRLs only) are refused.
	Reason int
	// InvalidityDate, when set, is when the key was known or suspected to
	// be compromised, encoded as GeneralizedTime (RFC 5280 §5.3.2).
	InvalidityDate *time.Time
}

// CRLRequest is one CRL to sign.
type CRLRequest struct {
	// Issuer is the intermediate that signs the CRL. It must be a CA with
	// cRLSign and a subjectKeyIdentifier, which becomes the CRL's
	// authorityKeyIdentifier (RFC 5280 §5.2.1).
	Issuer *x509.Certificate
	// Signer is the intermediate's private key; its public half must be
	// Issuer's.
	Signer crypto.Signer
	// Number is the cRLNumber (RFC 5280 §5.2.3): positive and at most 20
	// octets, that is below 2^159.
	Number *big.Int
	// ThisUpdate is when this CRL was issued (RFC 5280 §5.1.2.4).
	ThisUpdate time.Time
	// NextUpdate is when the next CRL will be issued, after ThisUpdate
	// (RFC 5280 §5.1.2.5).
	NextUpdate time.Time
	// DistributionPoint is the shard's URI. It goes, byte for byte, into a
	// critical issuingDistributionPoint extension (RFC 5280 §5.2.5) as the
	// distributionPoint's only fullName, so that it matches the
	// cRLDistributionPoints of the certificates of that shard.
	DistributionPoint string
	// Entries are the revoked certificates; serials must be unique.
	Entries []CRLEntry
}

// BuildCRL validates r and returns the DER of a v2 CRL signed by r.Signer
// (RFC 5280 §5): authorityKeyIdentifier and cRLNumber, and a critical
// issuingDistributionPoint naming r.DistributionPoint with
// onlyContainsUserCerts set, since workerca's CRLs list only end-entity
// worker certificates. Invalid requests are errors wrapping ErrInvalidCRL.
//
// x509.CreateRevocationList encodes and signs the CRL without its
// entries, choosing the signature algorithm for the key; BuildCRL then
// writes the entries into that TBSCertList itself, in the DER the
// standard library would write, signs it again with the same algorithm,
// checks the signature against Issuer and drops the entry-less CRL. The
// standard library encodes entries by reflection, at about 9 µs and
// 1.3 KB of garbage per entry, too slow for a million-entry CRL; this
// takes about 1 µs per entry, checks included, and allocates little more
// than twice the CRL's size.
func BuildCRL(r CRLRequest) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	if err := checkCRLEntries(r.Entries, r.ThisUpdate); err != nil {
		return nil, err
	}
	idp, err := marshalIDP(r.DistributionPoint)
	if err != nil {
		return nil, fmt.Errorf("revocation: issuingDistributionPoint: %w", err)
	}
	tmpl := &x509.RevocationList{
		Number:     r.Number,
		ThisUpdate: r.ThisUpdate.UTC(),
		NextUpdate: r.NextUpdate.UTC(),
		ExtraExtensions: []pkix.Extension{
			{Id: crlscope.OID, Critical: true, Value: idp},
		},
	}
	// ECDSA signing draws randomness; the CRL's content does not depend
	// on it, so it is not injected.
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, r.Issuer, r.Signer)
	if err != nil {
		return nil, fmt.Errorf("revocation: sign CRL: %w", err)
	}
	if len(r.Entries) == 0 {
		return der, nil
	}
	der, err = withEntries(der, r.Entries, r.Issuer, r.Signer)
	if err != nil {
		return nil, fmt.Errorf("revocation: sign CRL: %w", err)
	}
	return der, nil
}

// check validates everything about r but its entries, which
// checkCRLEntries checks.
func (r CRLRequest) check() error {
	switch {
	case r.Issuer == nil:
		return fmt.Errorf("%w: no issuer certificate", ErrInvalidCRL)
	case r.Signer == nil:
		return fmt.Errorf("%w: no signer", ErrInvalidCRL)
	case !r.Issuer.BasicConstraintsValid || !r.Issuer.IsCA:
		return fmt.Errorf("%w: issuer %s is not a CA", ErrInvalidCRL, r.Issuer.Subject)
	case r.Issuer.KeyUsage&x509.KeyUsageCRLSign == 0:
		return fmt.Errorf("%w: issuer %s lacks the cRLSign key usage (RFC 5280 §4.2.1.3)", ErrInvalidCRL, r.Issuer.Subject)
	case len(r.Issuer.SubjectKeyId) == 0:
		return fmt.Errorf("%w: issuer %s has no subjectKeyIdentifier for the CRL's authorityKeyIdentifier (RFC 5280 §5.2.1)", ErrInvalidCRL, r.Issuer.Subject)
	}
	pub, ok := r.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(r.Issuer.PublicKey) {
		return fmt.Errorf("%w: signer's public key is not the issuer's", ErrInvalidCRL)
	}
	if p := crlIntegerProblem(r.Number); p != "" {
		return fmt.Errorf("%w: CRL number %s", ErrInvalidCRL, p)
	}
	if p := crlTimeProblem(r.ThisUpdate); p != "" {
		return fmt.Errorf("%w: thisUpdate %s", ErrInvalidCRL, p)
	}
	if p := crlTimeProblem(r.NextUpdate); p != "" {
		return fmt.Errorf("%w: nextUpdate %s (RFC 5280 §5.1.2.5)", ErrInvalidCRL, p)
	}
	if !r.NextUpdate.After(r.ThisUpdate) {
		return fmt.Errorf("%w: nextUpdate %s is not after thisUpdate %s", ErrInvalidCRL,
			r.NextUpdate.UTC().Format(time.RFC3339), r.ThisUpdate.UTC().Format(time.RFC3339))
	}
	return checkCRLURI(r.DistributionPoint)
}

// crlTimeProblem says what is wrong with t as a CRL time, or "": it must
// be set and have a four-digit year, as UTCTime and GeneralizedTime need
// (RFC 5280 §4.1.2.5).
func crlTimeProblem(t time.Time) string {
	if t.IsZero() {
		return "is missing"
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Sprintf("is in year %d, which cannot be encoded", y)
	}
	return ""
}

// crlIntegerProblem says what is wrong with n as a CRL number (RFC 5280
// §5.2.3) or serial (§4.1.2.2), or "": it must be positive and at most 20
// octets.
func crlIntegerProblem(n *big.Int) string {
	switch {
	case n == nil:
		return "is missing"
	case n.Sign() <= 0:
		return n.String() + " is not positive"
	case n.BitLen() > crlMaxOctets*8-1:
		return fmt.Sprintf("is longer than %d octets", crlMaxOctets)
	}
	return ""
}

// checkCRLURI checks that the distribution point can go into an IA5String
// unchanged and is an absolute URI (RFC 5280 §4.2.1.6): printable ASCII
// with no spaces, and a scheme.
func checkCRLURI(uri string) error {
	if uri == "" {
		return fmt.Errorf("%w: no distribution point URI", ErrInvalidCRL)
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: distribution point URI %q has a byte 0x%02x outside printable ASCII", ErrInvalidCRL, uri, c)
		}
	}
	if u, err := url.Parse(uri); err != nil || u.Scheme == "" {
		return fmt.Errorf("%w: distribution point %q is not an absolute URI", ErrInvalidCRL, uri)
	}
	return nil
}

// checkCRLEntries checks every entry. Serials must be unique (RFC 5280
// §5.1.2.6 lists each revoked certificate once), and no entry may be
// revoked after thisUpdate: a CRL cannot report what had not happened
// when it was issued (zlint e_crl_revocation_time_after_this_update).
func checkCRLEntries(entries []CRLEntry, thisUpdate time.Time) error {
	for i, e := range entries {
		if p := crlIntegerProblem(e.Serial); p != "" {
			return fmt.Errorf("%w: serial of entry %d %s", ErrInvalidCRL, i, p)
		}
		if p := crlTimeProblem(e.RevokedAt); p != "" {
			return fmt.Errorf("%w: revocation time of entry %d (serial %x) %s", ErrInvalidCRL, i, e.Serial, p)
		}
		if e.RevokedAt.After(thisUpdate) {
			return fmt.Errorf("%w: entry %d (serial %x) revoked at %s, after thisUpdate %s", ErrInvalidCRL, i, e.Serial,
				e.RevokedAt.UTC().Format(time.RFC3339), thisUpdate.UTC().Format(time.RFC3339))
		}
		if !completeCRLReason(e.Reason) {
			return fmt.Errorf("%w: entry %d (serial %x) has reason %d, not a CRLReason of a complete CRL (RFC 5280 §5.3.1)",
				ErrInvalidCRL, i, e.Serial, e.Reason)
		}
		if e.InvalidityDate != nil {
			if p := crlTimeProblem(*e.InvalidityDate); p != "" {
				return fmt.Errorf("%w: invalidity date of entry %d (serial %x) %s", ErrInvalidCRL, i, e.Serial, p)
			}
		}
	}
	return checkCRLUnique(entries)
}

// completeCRLReason reports whether r is a CRLReason (RFC 5280 §5.3.1)
// an entry of a complete CRL may carry: 0 to 10, but for 7 (unassigned)
// and 8 (removeFromCRL, delta CRLs only).
func completeCRLReason(r int) bool {
	return r >= crlReasonUnspecified && r <= crlReasonMax && r != crlReasonUnassigned && r != crlReasonRemoveFromCRL
}

// checkCRLUnique refuses two entries with one serial. It sorts the
// serials as fixed-size big-endian keys, which are positive and at most
// 20 octets by now: a million serials take 20 MB and a fraction of a
// second, where sorting *big.Int or filling a map costs several times
// more.
func checkCRLUnique(entries []CRLEntry) error {
	keys := make([][crlMaxOctets]byte, len(entries))
	for i := range entries {
		entries[i].Serial.FillBytes(keys[i][:])
	}
	slices.SortFunc(keys, func(a, b [crlMaxOctets]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(keys); i++ {
		if keys[i-1] == keys[i] {
			return fmt.Errorf("%w: serial %x is listed twice", ErrInvalidCRL, new(big.Int).SetBytes(keys[i][:]))
		}
	}
	return nil
}

// marshalIDP encodes an IssuingDistributionPoint (RFC 5280 §5.2.5) with a
// distributionPoint fullName of one uniformResourceIdentifier and
// onlyContainsUserCerts TRUE:
//
//	IssuingDistributionPoint ::= SEQUENCE {
//	     distributionPoint          [0] DistributionPointName OPTIONAL,
//	     onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE, ... }
//	DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }
//	GeneralName ::= CHOICE { ..., uniformResourceIdentifier [6] IA5String, ... }
//
// The module uses implicit tags, but a tag on an untagged CHOICE such as
// DistributionPointName is always explicit (X.680), hence two [0]s. uri's
// bytes are copied as they are.
func marshalIDP(uri string) ([]byte, error) {
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)})
	if err != nil {
		return nil, err
	}
	fullName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: gn})
	if err != nil {
		return nil, err
	}
	dp, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: fullName})
	if err != nil {
		return nil, err
	}
	onlyUser, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte{0xff}})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(asn1.RawValue{
		Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: bytes.Join([][]byte{dp, onlyUser}, nil),
	})
}

// withEntries returns base, a signed CRL without entries, with entries
// added to its TBSCertList and signed again with the same algorithm:
//
//	CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
//	TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate, nextUpdate,
//	     revokedCertificates SEQUENCE OF SEQUENCE { ... } OPTIONAL,
//	     crlExtensions [0] EXPLICIT Extensions OPTIONAL }
//
// The signature is checked against issuer before the CRL is returned.
func withEntries(base []byte, entries []CRLEntry, issuer *x509.Certificate, signer crypto.Signer) ([]byte, error) {
	rl, err := x509.ParseRevocationList(base)
	if err != nil {
		return nil, err
	}
	var certList, tbs, sigAlg asn1.RawValue
	if _, err := asn1.Unmarshal(base, &certList); err != nil {
		return nil, err
	}
	rest, err := asn1.Unmarshal(certList.Bytes, &tbs)
	if err != nil {
		return nil, err
	}
	if _, err := asn1.Unmarshal(rest, &sigAlg); err != nil {
		return nil, err
	}
	// Keep version through nextUpdate as head, crlExtensions as tail.
	tail := tbs.Bytes
	for range 5 {
		var field asn1.RawValue
		if tail, err = asn1.Unmarshal(tail, &field); err != nil {
			return nil, fmt.Errorf("re-read TBSCertList: %w", err)
		}
	}
	head := tbs.Bytes[:len(tbs.Bytes)-len(tail)]

	enc := newEntryEncoder()
	listLen := 0
	for i := range entries {
		listLen += derLen(enc.entryLen(&entries[i]))
	}
	tbsLen := len(head) + derLen(listLen) + len(tail)
	newTBS := make([]byte, 0, derLen(tbsLen))
	newTBS = appendDERHeader(newTBS, derSequence, tbsLen)
	newTBS = append(newTBS, head...)
	newTBS = appendDERHeader(newTBS, derSequence, listLen)
	for i := range entries {
		newTBS = enc.appendEntry(newTBS, &entries[i])
	}
	newTBS = append(newTBS, tail...)
	if len(newTBS) != cap(newTBS) {
		return nil, fmt.Errorf("encoded %d bytes of TBSCertList, planned %d", len(newTBS), cap(newTBS))
	}

	sig, err := signTBS(signer, rl.SignatureAlgorithm, newTBS)
	if err != nil {
		return nil, err
	}
	if err := issuer.CheckSignature(rl.SignatureAlgorithm, newTBS, sig); err != nil {
		return nil, fmt.Errorf("signature does not verify with the issuer: %w", err)
	}
	bitString := 1 + len(sig) // no unused bits, then the signature
	total := len(newTBS) + len(sigAlg.FullBytes) + derLen(bitString)
	out := make([]byte, 0, derLen(total))
	out = appendDERHeader(out, derSequence, total)
	out = append(out, newTBS...)
	out = append(out, sigAlg.FullBytes...)
	out = appendDERHeader(out, derBitString, bitString)
	out = append(out, 0)
	return append(out, sig...), nil
}

// signTBS signs tbs as x509.CreateRevocationList does for alg, which it
// chose for signer's key: ECDSA or RSA PKCS #1 v1.5 over the digest, or
// pure Ed25519.
func signTBS(signer crypto.Signer, alg x509.SignatureAlgorithm, tbs []byte) ([]byte, error) {
	var h crypto.Hash
	var newHash func() hash.Hash
	switch alg {
	case x509.PureEd25519:
		return signer.Sign(rand.Reader, tbs, crypto.Hash(0))
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		h, newHash = crypto.SHA256, sha256.New
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		h, newHash = crypto.SHA384, sha512.New384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		h, newHash = crypto.SHA512, sha512.New
	default:
		return nil, fmt.Errorf("signature algorithm %s is not supported", alg)
	}
	d := newHash()
	d.Write(tbs)
	return signer.Sign(rand.Reader, d.Sum(nil), h)
}

// DER identifier octets BuildCRL writes.
const (
	derBitString       = 0x03
	derSequence        = 0x30
	derInteger         = 0x02
	derUTCTime         = 0x17
	derGeneralizedTime = 0x18
)

// entryEncoder writes revokedCertificates entries (RFC 5280 §5.1) as DER:
//
//	SEQUENCE { userCertificate INTEGER, revocationDate Time,
//	           crlEntryExtensions Extensions OPTIONAL }
//
// with the extensions in the order x509.CreateRevocationList writes them:
// invalidityDate, then reasonCode, which is left out for unspecified.
type entryEncoder struct {
	// reason holds the DER reasonCode Extension of each CRLReason; the
	// one of 0 is empty, as it is never written.
	reason [crlReasonMax + 1][]byte
	// invalidity is a DER invalidityDate Extension up to the 15 octets of
	// its GeneralizedTime's value.
	invalidity []byte
}

// generalizedTimeLen is the length of YYYYMMDDHHMMSSZ.
const generalizedTimeLen = 15

func newEntryEncoder() *entryEncoder {
	enc := &entryEncoder{}
	for r := 1; r <= crlReasonMax; r++ {
		enc.reason[r] = marshalExtension(oidReasonCode, []byte{0x0a, 0x01, byte(r)}) // ENUMERATED r
	}
	value := appendDERHeader(nil, derGeneralizedTime, generalizedTimeLen)
	ext := marshalExtension(oidInvalidityDate, append(value, make([]byte, generalizedTimeLen)...))
	enc.invalidity = ext[:len(ext)-generalizedTimeLen]
	return enc
}

// marshalExtension is the DER of a non-critical Extension (RFC 5280
// §4.1): SEQUENCE { extnID, extnValue OCTET STRING }.
func marshalExtension(oid asn1.ObjectIdentifier, value []byte) []byte {
	der, err := asn1.Marshal(pkix.Extension{Id: oid, Value: value})
	if err != nil {
		panic("revocation: marshal a fixed extension: " + err.Error())
	}
	return der
}

// extensionsLen is the length of e's crlEntryExtensions' contents.
func (enc *entryEncoder) extensionsLen(e *CRLEntry) int {
	n := len(enc.reason[e.Reason])
	if e.InvalidityDate != nil {
		n += len(enc.invalidity) + generalizedTimeLen
	}
	return n
}

// entryLen is the length of e's contents.
func (enc *entryEncoder) entryLen(e *CRLEntry) int {
	n := derLen(serialLen(e.Serial)) + derLen(timeLen(e.RevokedAt))
	if exts := enc.extensionsLen(e); exts > 0 {
		n += derLen(exts)
	}
	return n
}

// appendEntry appends e as DER.
func (enc *entryEncoder) appendEntry(dst []byte, e *CRLEntry) []byte {
	dst = appendDERHeader(dst, derSequence, enc.entryLen(e))
	n := serialLen(e.Serial)
	dst = appendDERHeader(dst, derInteger, n)
	dst = append(dst, make([]byte, n)...) // no allocation: append grows dst in place
	e.Serial.FillBytes(dst[len(dst)-n:])
	dst = appendTime(dst, e.RevokedAt)
	if exts := enc.extensionsLen(e); exts > 0 {
		dst = appendDERHeader(dst, derSequence, exts)
		if e.InvalidityDate != nil {
			dst = append(dst, enc.invalidity...)
			dst = e.InvalidityDate.UTC().AppendFormat(dst, "20060102150405Z")
		}
		dst = append(dst, enc.reason[e.Reason]...)
	}
	return dst
}

// serialLen is the length of a positive INTEGER's contents: its
// big-endian bytes, with a leading zero when the top bit is set.
func serialLen(n *big.Int) int {
	return n.BitLen()/8 + 1
}

// timeLen is the length of t's contents as RFC 5280 §5.1.2.6 encodes it:
// UTCTime (YYMMDDHHMMSSZ) for 1950 through 2049, else GeneralizedTime.
func timeLen(t time.Time) int {
	if y := t.UTC().Year(); y >= 1950 && y < 2050 {
		return 13
	}
	return generalizedTimeLen
}

// appendTime appends t as a DER UTCTime or GeneralizedTime, in UTC and
// whole seconds, as encoding/asn1 writes a time.Time.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if n := timeLen(t); n == 13 {
		dst = appendDERHeader(dst, derUTCTime, n)
		return t.AppendFormat(dst, "060102150405Z")
	}
	dst = appendDERHeader(dst, derGeneralizedTime, generalizedTimeLen)
	return t.AppendFormat(dst, "20060102150405Z")
}

// derLen is the length of a DER element with n octets of contents.
func derLen(n int) int {
	return 1 + lengthLen(n) + n
}

// lengthLen is the length of the DER length octets for n.
func lengthLen(n int) int {
	if n < 0x80 {
		return 1
	}
	l := 1
	for ; n > 0; n >>= 8 {
		l++
	}
	return l
}

// appendDERHeader appends a DER identifier octet and the length n.
func appendDERHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	if n < 0x80 {
		return append(dst, byte(n))
	}
	l := lengthLen(n) - 1
	dst = append(dst, 0x80|byte(l))
	for i := l - 1; i >= 0; i-- {
		dst = append(dst, byte(n>>(8*i)))
	}
	return dst
}
