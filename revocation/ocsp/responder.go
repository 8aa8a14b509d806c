package ocsp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Config is what New needs to build a Responder.
type Config struct {
	// Issuer is the CA certificate whose certificates the responder answers
	// for. The CertID of every response is computed from it. Required.
	Issuer *x509.Certificate
	// Cert is the delegated responder certificate (RFC 6960 §4.2.2.2): issued
	// directly by Issuer, with the id-kp-OCSPSigning extended key usage, and
	// with digitalSignature if it has a key usage extension. RFC 5019 and
	// RFC 9919 §2.2.2 recommend it carry id-pkix-ocsp-nocheck; New does not
	// insist. The issuer cannot sign its own responses here.
	// It is sent in the certs field of every response. Required.
	Cert *x509.Certificate
	// Key is Cert's private key: ECDSA on P-256, P-384 or P-521, RSA of at
	// least 2048 bits, or Ed25519. Required.
	Key crypto.Signer
	// Rand is the randomness handed to Key.Sign. Defaults to crypto/rand.
	Rand io.Reader
}

// Responder signs OCSP responses for one issuer with a delegated responder
// certificate. It is safe for concurrent use if its Key is.
type Responder struct {
	cert         *x509.Certificate
	key          crypto.Signer
	rand         io.Reader
	responderKey []byte                       // SHA-1 of Cert's subjectPublicKey: the byKey ResponderID
	certIDs      map[crypto.Hash]certIDHashes // Issuer's CertID hashes, by CertID hash
	sigAlg       []byte                       // DER AlgorithmIdentifier of the response signature
	sigHash      crypto.Hash                  // hash signed, or 0 for Ed25519
}

// New checks cfg and returns a Responder. Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Responder, error) {
	switch {
	case cfg.Issuer == nil:
		return nil, fmt.Errorf("%w: no issuer", ErrInvalidConfig)
	case cfg.Cert == nil:
		return nil, fmt.Errorf("%w: no responder certificate", ErrInvalidConfig)
	case cfg.Key == nil:
		return nil, fmt.Errorf("%w: no responder key", ErrInvalidConfig)
	}
	if err := cfg.Cert.CheckSignatureFrom(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("%w: responder certificate not issued by the issuer (RFC 6960 §4.2.2.2): %v", ErrInvalidConfig, err)
	}
	if !slices.Contains(cfg.Cert.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return nil, fmt.Errorf("%w: responder certificate lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", ErrInvalidConfig)
	}
	if cfg.Cert.KeyUsage != 0 && cfg.Cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: responder certificate key usage lacks digitalSignature", ErrInvalidConfig)
	}
	pub, ok := cfg.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cfg.Cert.PublicKey) {
		return nil, fmt.Errorf("%w: key does not match the responder certificate", ErrInvalidConfig)
	}
	sigAlg, sigHash, err := signatureAlgorithm(cfg.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	responderBits, err := subjectPublicKeyBits(cfg.Cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: responder certificate: %v", ErrInvalidConfig, err)
	}
	certIDs := make(map[crypto.Hash]certIDHashes, 4)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		ids, err := issuerHashes(cfg.Issuer, h)
		if err != nil {
			return nil, fmt.Errorf("%w: issuer: %v", ErrInvalidConfig, err)
		}
		certIDs[h] = ids
	}
	r := &Responder{
		cert:         cfg.Cert,
		key:          cfg.Key,
		rand:         cfg.Rand,
		responderKey: digest(crypto.SHA1, responderBits),
		certIDs:      certIDs,
		sigAlg:       sigAlg,
		sigHash:      sigHash,
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	return r, nil
}

// MatchesIssuer reports whether req asks about a certificate of the
// responder's issuer, as req.MatchesIssuer(cfg.Issuer) does, but from the
// CertID hashes New computed: nothing is hashed per request.
func (r *Responder) MatchesIssuer(req *Request) bool {
	if req == nil {
		return false
	}
	ids, ok := r.certIDs[req.HashAlgorithm]
	return ok && bytes.Equal(ids.name, req.IssuerNameHash) && bytes.Equal(ids.key, req.IssuerKeyHash)
}

// signatureAlgorithm returns the DER AlgorithmIdentifier and the hash with
// which a key of type pub signs responses: ecdsa-with-SHA256, -SHA384 or
// -SHA512 by curve, without parameters (RFC 5758 §3.2);
// sha256WithRSAEncryption, PKCS #1 v1.5, with NULL parameters (RFC 4055
// §5); Ed25519 without parameters (RFC 8410 §3).
func signatureAlgorithm(pub crypto.PublicKey) ([]byte, crypto.Hash, error) {
	var oid, params string
	var h crypto.Hash
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			oid, h = oidECDSAWithSHA256, crypto.SHA256
		case elliptic.P384():
			oid, h = oidECDSAWithSHA384, crypto.SHA384
		case elliptic.P521():
			oid, h = oidECDSAWithSHA512, crypto.SHA512
		default:
			return nil, 0, fmt.Errorf("unsupported ECDSA curve %s", pub.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, 0, fmt.Errorf("RSA key of %d bits; at least 2048 required", pub.N.BitLen())
		}
		oid, params, h = oidSHA256WithRSA, derNULL, crypto.SHA256
	case ed25519.PublicKey:
		oid = oidEd25519
	default:
		return nil, 0, fmt.Errorf("unsupported key type %T", pub)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes([]byte(oid))
		b.AddBytes([]byte(params))
	})
	der, err := b.Bytes()
	return der, h, err
}

// Sign returns a complete DER OCSPResponse: status successful, a
// BasicOCSPResponse (RFC 6960 §4.2.1) holding one SingleResponse for resp,
// signed with the responder key. The ResponderID is byKey, the SHA-1 of the
// responder certificate's subjectPublicKey, as RFC 9919 §2.2.2 requires of
// responders following the lightweight profile. The version is v1 and so,
// being the DEFAULT, absent. certs carries the responder certificate and
// nothing else. A non-nil resp.Nonce is the only responseExtension.
//
// Errors wrap ErrInvalidResponse when resp cannot be encoded; an error from
// the key is returned wrapped as it is.
func (r *Responder) Sign(resp Response) ([]byte, error) {
	if err := r.check(&resp); err != nil {
		return nil, err
	}
	ids := r.certIDs[resp.HashAlgorithm]
	certIDHash, _ := hashOID(resp.HashAlgorithm)

	b := cryptobyte.NewBuilder(make([]byte, 0, 256+len(resp.Nonce)))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseData
		b.AddASN1(tagExplicit2, func(b *cryptobyte.Builder) { // ResponderID byKey [2] EXPLICIT KeyHash
			b.AddASN1OctetString(r.responderKey)
		})
		addTime(b, resp.ProducedAt)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // responses
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SingleResponse
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // CertID
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(certIDHash))
						b.AddBytes([]byte(derNULL)) // NULL parameters, as OpenSSL and x/crypto/ocsp write them
					})
					b.AddASN1OctetString(ids.name)
					b.AddASN1OctetString(ids.key)
					b.AddASN1BigInt(resp.SerialNumber)
				})
				addCertStatus(b, &resp)
				addTime(b, resp.ThisUpdate)
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // nextUpdate [0] EXPLICIT
					addTime(b, resp.NextUpdate)
				})
			})
		})
		if resp.Nonce != nil {
			b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) { // responseExtensions [1] EXPLICIT
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Extension, not critical
						b.AddBytes([]byte(oidNonce))
						b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) { // extnValue
							b.AddASN1OctetString(resp.Nonce) // Nonce (RFC 9654 §2.1)
						})
					})
				})
			})
		}
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}

	signed := tbs
	var opts crypto.SignerOpts = crypto.Hash(0) // Ed25519 signs the message itself
	if r.sigHash != 0 {
		signed, opts = digest(r.sigHash, tbs), r.sigHash
	}
	sig, err := r.key.Sign(r.rand, signed, opts)
	if err != nil {
		return nil, fmt.Errorf("ocsp: signing response: %w", err)
	}

	b = cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(sig)+len(r.cert.Raw)+64))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPResponse
		b.AddASN1Enum(0) // responseStatus successful
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ResponseBytes
				b.AddBytes([]byte(oidBasic))
				b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // BasicOCSPResponse
						b.AddBytes(tbs)
						b.AddBytes(r.sigAlg)
						b.AddASN1BitString(sig)
						b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // certs [0] EXPLICIT
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(r.cert.Raw)
							})
						})
					})
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidResponse, err)
	}
	return der, nil
}

// check validates resp before encoding. Errors wrap ErrInvalidResponse.
func (r *Responder) check(resp *Response) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidResponse}, args...)...)
	}
	switch resp.Status {
	case Good, Unknown:
	case Revoked:
		if resp.RevokedAt.IsZero() {
			return bad("revoked without RevokedAt")
		}
		if err := wholeSeconds("RevokedAt", resp.RevokedAt); err != nil {
			return bad("%v", err)
		}
		if !validReason(resp.Reason) {
			return bad("CRLReason %d is not one of RFC 5280 §5.3.1, nor -1", resp.Reason)
		}
	default:
		return bad("status %v", resp.Status)
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Sign() < 0 {
		return bad("serial number missing or negative")
	}
	if _, ok := r.certIDs[resp.HashAlgorithm]; !ok {
		return bad("unsupported CertID hash %v", resp.HashAlgorithm)
	}
	for _, t := range []struct {
		name string
		t    time.Time
	}{{"ThisUpdate", resp.ThisUpdate}, {"NextUpdate", resp.NextUpdate}, {"ProducedAt", resp.ProducedAt}} {
		if t.t.IsZero() {
			return bad("%s missing", t.name)
		}
		if err := wholeSeconds(t.name, t.t); err != nil {
			return bad("%v", err)
		}
	}
	if !resp.NextUpdate.After(resp.ThisUpdate) {
		return bad("NextUpdate %v is not after ThisUpdate %v", resp.NextUpdate, resp.ThisUpdate)
	}
	if resp.ProducedAt.Before(r.cert.NotBefore) || resp.ProducedAt.After(r.cert.NotAfter) {
		return bad("ProducedAt %v outside the responder certificate's validity [%v, %v]",
			resp.ProducedAt, r.cert.NotBefore, r.cert.NotAfter)
	}
	if resp.Nonce != nil && (len(resp.Nonce) < 1 || len(resp.Nonce) > MaxNonceLen) {
		return bad("nonce of %d octets; RFC 9654 §2.1 allows 1 to %d", len(resp.Nonce), MaxNonceLen)
	}
	return nil
}

// wholeSeconds refuses a time with a fractional second: RFC 5019 §2.2.4
// forbids them in OCSP GeneralizedTime, and truncating silently would let
// the signed times differ from the ones the caller keeps (for HTTP caching
// headers, say).
func wholeSeconds(name string, t time.Time) error {
	if t.Nanosecond() != 0 {
		return fmt.Errorf("%s %v has a fractional second; truncate it to whole seconds", name, t)
	}
	return nil
}

// validReason reports whether reason may be written as revocationReason:
// -1 (omitted) or a CRLReason of RFC 5280 §5.3.1, where 7 is unused.
func validReason(reason int) bool {
	return reason == -1 || (reason >= 0 && reason <= 10 && reason != 7)
}

// addTime writes t as a UTC GeneralizedTime, YYYYMMDDHHMMSSZ (RFC 5019
// §2.2.4). Callers have checked t is whole seconds; the builder records an
// error for a year outside 0 to 9999.
func addTime(b *cryptobyte.Builder, t time.Time) {
	b.AddASN1GeneralizedTime(t.UTC())
}

// addCertStatus writes the CertStatus CHOICE (RFC 6960 §4.2.1): good
// [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT
// UnknownInfo (a NULL).
func addCertStatus(b *cryptobyte.Builder, resp *Response) {
	switch resp.Status {
	case Good:
		b.AddASN1(tagNULL0, func(*cryptobyte.Builder) {})
	case Revoked:
		b.AddASN1(tagExplicit1, func(b *cryptobyte.Builder) {
			addTime(b, resp.RevokedAt)
			if resp.Reason >= 0 {
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // revocationReason [0] EXPLICIT
					b.AddASN1Enum(int64(resp.Reason))
				})
			}
		})
	case Unknown:
		b.AddASN1(tagNULL2, func(*cryptobyte.Builder) {})
	}
}
