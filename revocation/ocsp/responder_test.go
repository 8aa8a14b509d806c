package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/revocation/ocsp"
)

// decodedResponse is a signed OCSPResponse taken apart with encoding/asn1,
// independently of the encoder under test.
type decodedResponse struct {
	tbs         []byte // the signed ResponseData, DER
	sigAlg      []byte // signatureAlgorithm, DER
	sig         []byte
	certs       [][]byte
	responderID asn1.RawValue
	producedAt  asn1.RawValue
	single      singleResponseASN1
	extensions  []pkix.Extension // responseExtensions
}

type ocspResponseASN1 struct {
	Status asn1.Enumerated
	Bytes  struct {
		Type     asn1.ObjectIdentifier
		Response []byte
	} `asn1:"explicit,tag:0"`
}

type basicResponseASN1 struct {
	TBS    asn1.RawValue
	SigAlg asn1.RawValue
	Sig    asn1.BitString
	Certs  []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

// responseDataASN1 has no version field: if the encoder wrote one, it
// lands in ResponderID and the byKey check fails.
type responseDataASN1 struct {
	ResponderID asn1.RawValue
	ProducedAt  asn1.RawValue
	Responses   []singleResponseASN1
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type singleResponseASN1 struct {
	CertID struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
	Status     asn1.RawValue
	ThisUpdate asn1.RawValue
	NextUpdate asn1.RawValue    `asn1:"optional"` // [0] EXPLICIT, unwrapped by checkSigned
	Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

var oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}

// decodeResponse takes a successful DER OCSPResponse apart.
func decodeResponse(t *testing.T, der []byte) *decodedResponse {
	t.Helper()
	var outer ocspResponseASN1
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) != 0 {
		t.Fatalf("OCSPResponse: %v (%d trailing octets)", err, len(rest))
	}
	if outer.Status != 0 || !outer.Bytes.Type.Equal(oidOCSPBasic) {
		t.Fatalf("status %d, responseType %v", outer.Status, outer.Bytes.Type)
	}
	var basic basicResponseASN1
	if rest, err := asn1.Unmarshal(outer.Bytes.Response, &basic); err != nil || len(rest) != 0 {
		t.Fatalf("BasicOCSPResponse: %v (%d trailing octets)", err, len(rest))
	}
	var data responseDataASN1
	if rest, err := asn1.Unmarshal(basic.TBS.FullBytes, &data); err != nil || len(rest) != 0 {
		t.Fatalf("ResponseData: %v (%d trailing octets)", err, len(rest))
	}
	if len(data.Responses) != 1 {
		t.Fatalf("%d SingleResponses, want 1", len(data.Responses))
	}
	if basic.Sig.BitLength%8 != 0 {
		t.Fatalf("signature of %d bits", basic.Sig.BitLength)
	}
	d := &decodedResponse{
		tbs: basic.TBS.FullBytes, sigAlg: basic.SigAlg.FullBytes, sig: basic.Sig.Bytes,
		responderID: data.ResponderID, producedAt: data.ProducedAt,
		single: data.Responses[0], extensions: data.Extensions,
	}
	for _, c := range basic.Certs {
		d.certs = append(d.certs, c.FullBytes)
	}
	return d
}

// checkTime asserts raw is a GeneralizedTime of want in the
// YYYYMMDDHHMMSSZ form RFC 5019 §2.2.4 requires.
func checkTime(t *testing.T, field string, raw asn1.RawValue, want time.Time) {
	t.Helper()
	wantStr := want.UTC().Format("20060102150405Z")
	if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagGeneralizedTime || string(raw.Bytes) != wantStr {
		t.Errorf("%s = tag %d %q, want GeneralizedTime %q", field, raw.Tag, raw.Bytes, wantStr)
	}
}

// expectedSigAlg is the DER AlgorithmIdentifier a responder key of kind
// must sign with, and the x509 algorithm to verify it.
func expectedSigAlg(t *testing.T, kind string) ([]byte, x509.SignatureAlgorithm) {
	t.Helper()
	var ai pkix.AlgorithmIdentifier
	var alg x509.SignatureAlgorithm
	switch kind {
	case "p256":
		ai.Algorithm, alg = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, x509.ECDSAWithSHA256
	case "p384":
		ai.Algorithm, alg = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, x509.ECDSAWithSHA384
	case "rsa2048":
		ai.Algorithm, ai.Parameters, alg = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, asn1.NullRawValue, x509.SHA256WithRSA
	case "ed25519":
		ai.Algorithm, alg = asn1.ObjectIdentifier{1, 3, 101, 112}, x509.PureEd25519
	default:
		t.Fatalf("kind %q", kind)
	}
	der, err := asn1.Marshal(ai)
	if err != nil {
		t.Fatal(err)
	}
	return der, alg
}

// checkSigned asserts everything about a signed response that does not
// depend on x/crypto/ocsp: structure, CertID, times, status, nonce,
// ResponderID, certs and signature.
func checkSigned(t *testing.T, c *chain, kind string, der []byte, want ocsp.Response) {
	t.Helper()
	d := decodeResponse(t, der)

	// ResponderID byKey [2] EXPLICIT OCTET STRING: SHA-1 of the responder's
	// subjectPublicKey; no version before it.
	_, responderKeyHash := testIssuerHashes(t, c.responder, crypto.SHA1)
	wantID, _ := asn1.Marshal(responderKeyHash)
	if d.responderID.Class != asn1.ClassContextSpecific || d.responderID.Tag != 2 || !bytes.Equal(d.responderID.Bytes, wantID) {
		t.Errorf("ResponderID = class %d tag %d %x, want byKey %x", d.responderID.Class, d.responderID.Tag, d.responderID.Bytes, wantID)
	}
	checkTime(t, "producedAt", d.producedAt, want.ProducedAt)
	checkTime(t, "thisUpdate", d.single.ThisUpdate, want.ThisUpdate)
	var nextUpdate asn1.RawValue // inside the [0] EXPLICIT wrapper
	if nu := d.single.NextUpdate; nu.Class != asn1.ClassContextSpecific || nu.Tag != 0 || !nu.IsCompound {
		t.Errorf("nextUpdate = %x, want [0] EXPLICIT", nu.FullBytes)
	} else if rest, err := asn1.Unmarshal(nu.Bytes, &nextUpdate); err != nil || len(rest) != 0 {
		t.Errorf("nextUpdate: %v", err)
	}
	checkTime(t, "nextUpdate", nextUpdate, want.NextUpdate)

	id := d.single.CertID
	wantHashOID := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}[want.HashAlgorithm]
	if !id.HashAlgorithm.Algorithm.Equal(wantHashOID) || !bytes.Equal(id.HashAlgorithm.Parameters.FullBytes, []byte{0x05, 0x00}) {
		t.Errorf("CertID hashAlgorithm = %v %x, want %v with NULL", id.HashAlgorithm.Algorithm, id.HashAlgorithm.Parameters.FullBytes, wantHashOID)
	}
	name, key := testIssuerHashes(t, c.inter, want.HashAlgorithm)
	if !bytes.Equal(id.IssuerNameHash, name) || !bytes.Equal(id.IssuerKeyHash, key) {
		t.Errorf("CertID issuer hashes = %x, %x; want %x, %x", id.IssuerNameHash, id.IssuerKeyHash, name, key)
	}
	if id.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf("CertID serial = %x, want %x", id.SerialNumber, want.SerialNumber)
	}

	st := d.single.Status
	switch want.Status {
	case ocsp.Good:
		if st.Class != asn1.ClassContextSpecific || st.Tag != 0 || st.IsCompound || len(st.Bytes) != 0 {
			t.Errorf("certStatus = %x, want good [0] IMPLICIT NULL (80 00)", st.FullBytes)
		}
	case ocsp.Unknown:
		if st.Class != asn1.ClassContextSpecific || st.Tag != 2 || st.IsCompound || len(st.Bytes) != 0 {
			t.Errorf("certStatus = %x, want unknown [2] IMPLICIT NULL (82 00)", st.FullBytes)
		}
	case ocsp.Revoked:
		if st.Class != asn1.ClassContextSpecific || st.Tag != 1 || !st.IsCompound {
			t.Fatalf("certStatus = %x, want revoked [1] IMPLICIT RevokedInfo", st.FullBytes)
		}
		var revokedAt asn1.RawValue
		rest, err := asn1.Unmarshal(st.Bytes, &revokedAt)
		if err != nil {
			t.Fatal(err)
		}
		checkTime(t, "revocationTime", revokedAt, want.RevokedAt)
		if want.Reason < 0 {
			if len(rest) != 0 {
				t.Errorf("revocationReason present (%x), want it omitted", rest)
			}
			break
		}
		wantReason := []byte{0xa0, 0x03, 0x0a, 0x01, byte(want.Reason)} // [0] EXPLICIT ENUMERATED
		if !bytes.Equal(rest, wantReason) {
			t.Errorf("revocationReason = %x, want %x", rest, wantReason)
		}
	}
	if len(d.single.Extensions) != 0 {
		t.Errorf("singleExtensions = %v, want none", d.single.Extensions)
	}

	if want.Nonce == nil {
		if len(d.extensions) != 0 {
			t.Errorf("responseExtensions = %v, want none", d.extensions)
		}
	} else {
		wantValue, _ := asn1.Marshal(want.Nonce)
		if len(d.extensions) != 1 || !d.extensions[0].Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}) ||
			d.extensions[0].Critical || !bytes.Equal(d.extensions[0].Value, wantValue) {
			t.Errorf("responseExtensions = %+v, want the nonce %x alone, not critical", d.extensions, want.Nonce)
		}
	}

	if len(d.certs) != 1 || !bytes.Equal(d.certs[0], c.responder.Raw) {
		t.Errorf("certs holds %d certificates, want the responder certificate alone", len(d.certs))
	}
	wantAlg, alg := expectedSigAlg(t, kind)
	if !bytes.Equal(d.sigAlg, wantAlg) {
		t.Errorf("signatureAlgorithm = %x, want %x", d.sigAlg, wantAlg)
	}
	if err := c.responder.CheckSignature(alg, d.tbs, d.sig); err != nil {
		t.Errorf("signature does not verify under the responder certificate: %v", err)
	}
}

// TestSign signs every status with every key type and CertID hash, takes
// the response apart with encoding/asn1, and has x/crypto/ocsp parse and
// verify it against the issuer (it checks the responder certificate's
// signature by the issuer and the response signature; it cannot verify
// Ed25519, which checkSigned verifies instead).
func TestSign(t *testing.T) {
	t.Parallel()
	statuses := []struct {
		name string
		resp ocsp.Response
	}{
		{name: "good", resp: ocsp.Response{Status: ocsp.Good, Reason: -1}},
		{name: "revoked-key-compromise", resp: ocsp.Response{Status: ocsp.Revoked, RevokedAt: epoch.Add(-90 * time.Minute), Reason: xocsp.KeyCompromise}},
		{name: "revoked-no-reason", resp: ocsp.Response{Status: ocsp.Revoked, RevokedAt: epoch.Add(-90 * time.Minute), Reason: -1}},
		{name: "revoked-unspecified", resp: ocsp.Response{Status: ocsp.Revoked, RevokedAt: epoch.Add(-time.Second), Reason: 0}},
		{name: "unknown", resp: ocsp.Response{Status: ocsp.Unknown, Reason: -1}},
	}
	for _, kind := range keyKinds {
		c := newChain(t, kind)
		r := c.responderFor(t)
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			for _, st := range statuses {
				for _, nonce := range [][]byte{nil, []byte("0123456789abcdef")} {
					name := fmt.Sprintf("ok/%s/%s/%s/nonce-%t", kind, strings.ToLower(strings.ReplaceAll(h.String(), "-", "")), st.name, nonce != nil)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						serial := randomSerial(t)
						leaf := c.leaf(t, serial)
						resp := st.resp
						resp.SerialNumber, resp.HashAlgorithm, resp.Nonce = serial, h, nonce
						resp.ThisUpdate, resp.NextUpdate, resp.ProducedAt = epoch.Add(-time.Minute), epoch.Add(4*time.Hour), epoch

						der, err := r.Sign(resp)
						if err != nil {
							t.Fatalf("Sign: %v", err)
						}
						checkSigned(t, c, kind, der, resp)
						if kind == "ed25519" {
							return // x/crypto/ocsp knows no Ed25519 signature algorithm
						}
						checkXCrypto(t, c, leaf, der, resp)
					})
				}
			}
		}
	}
}

// checkXCrypto parses der with x/crypto/ocsp.ParseResponseForCert, which
// verifies the embedded responder certificate against the issuer and the
// response signature against that certificate.
func checkXCrypto(t *testing.T, c *chain, leaf *x509.Certificate, der []byte, want ocsp.Response) {
	t.Helper()
	got, err := xocsp.ParseResponseForCert(der, leaf, c.inter)
	if err != nil {
		t.Fatalf("x/crypto/ocsp.ParseResponseForCert: %v", err)
	}
	wantStatus := map[ocsp.Status]int{ocsp.Good: xocsp.Good, ocsp.Revoked: xocsp.Revoked, ocsp.Unknown: xocsp.Unknown}[want.Status]
	if got.Status != wantStatus {
		t.Errorf("status = %d, want %d", got.Status, wantStatus)
	}
	if got.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf("serial = %x, want %x", got.SerialNumber, want.SerialNumber)
	}
	if got.IssuerHash != want.HashAlgorithm {
		t.Errorf("IssuerHash = %v, want %v", got.IssuerHash, want.HashAlgorithm)
	}
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"ThisUpdate", got.ThisUpdate, want.ThisUpdate},
		{"NextUpdate", got.NextUpdate, want.NextUpdate},
		{"ProducedAt", got.ProducedAt, want.ProducedAt},
	} {
		if !tc.got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if want.Status == ocsp.Revoked {
		if !got.RevokedAt.Equal(want.RevokedAt) {
			t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, want.RevokedAt)
		}
		if wantReason := max(want.Reason, 0); got.RevocationReason != wantReason {
			t.Errorf("RevocationReason = %d, want %d", got.RevocationReason, wantReason)
		}
	}
	wantKeyHash := sha1.Sum(mustKeyBits(t, c.responder))
	if !bytes.Equal(got.ResponderKeyHash, wantKeyHash[:]) || got.RawResponderName != nil {
		t.Errorf("ResponderKeyHash = %x, RawResponderName = %x; want byKey %x", got.ResponderKeyHash, got.RawResponderName, wantKeyHash)
	}
	if got.Certificate == nil || !got.Certificate.Equal(c.responder) {
		t.Error("embedded certificate is not the responder certificate")
	}
	if len(got.Extensions) != 0 {
		t.Errorf("singleExtensions = %v, want none (the nonce belongs in responseExtensions)", got.Extensions)
	}
}

// mustKeyBits returns the subjectPublicKey BIT STRING value of cert.
func mustKeyBits(t *testing.T, cert *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	return spki.PublicKey.RightAlign()
}

// TestSignOpenSSL is the interoperability test: the real openssl makes the
// request, ParseRequest reads it, Sign answers it echoing the nonce, and
// openssl verifies the answer against the root, checking the delegation
// (id-kp-OCSPSigning, issued by the CA of the CertID), the CertID and the
// nonce.
func TestSignOpenSSL(t *testing.T) {
	t.Parallel()
	requireOpenSSL(t)
	cases := []struct {
		name   string
		args   []string // openssl request options
		status ocsp.Status
		reason int
		want   string // openssl's status line for leaf.pem
	}{
		{name: "good-sha1-nonce", status: ocsp.Good, want: "leaf.pem: good"},
		{name: "revoked-sha256-nonce", args: []string{"-sha256"}, status: ocsp.Revoked, reason: xocsp.KeyCompromise, want: "leaf.pem: revoked"},
		{name: "revoked-no-reason-sha1-no-nonce", args: []string{"-no_nonce"}, status: ocsp.Revoked, reason: -1, want: "leaf.pem: revoked"},
		{name: "unknown-sha256-no-nonce", args: []string{"-sha256", "-no_nonce"}, status: ocsp.Unknown, want: "leaf.pem: unknown"},
	}
	for _, kind := range keyKinds {
		c := newChain(t, kind)
		r := c.responderFor(t)
		for _, tc := range cases {
			t.Run("ok/"+kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				writePEM(t, dir, "root.pem", c.root)
				writePEM(t, dir, "int.pem", c.inter)
				writePEM(t, dir, "leaf.pem", c.leaf(t, randomSerial(t)))
				args := append([]string{"ocsp", "-issuer", "int.pem"}, tc.args...)
				args = append(args, "-cert", "leaf.pem", "-reqout", "req.der")
				if out, err := openssl(t, dir, args...); err != nil {
					t.Fatalf("openssl %v: %v\n%s", args, err, out)
				}
				req, err := ocsp.ParseRequest(readFile(t, dir, "req.der"))
				if err != nil {
					t.Fatalf("ParseRequest: %v", err)
				}
				if !req.MatchesIssuer(c.inter) {
					t.Fatal("request does not match the intermediate")
				}
				resp := ocsp.Response{
					Status: tc.status, SerialNumber: req.SerialNumber, HashAlgorithm: req.HashAlgorithm,
					Reason: -1, ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour), ProducedAt: epoch,
					Nonce: req.Nonce,
				}
				if tc.status == ocsp.Revoked {
					resp.RevokedAt, resp.Reason = epoch.Add(-time.Hour), tc.reason
				}
				der, err := r.Sign(resp)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				writeFile(t, dir, "resp.der", der)

				// With the request as sent: signature, delegation, chain to the
				// root, and the nonce against the request's.
				out, err := openssl(t, dir, verifyArgs("-reqin", "req.der", "-resp_text")...)
				if err != nil {
					t.Fatalf("openssl ocsp -reqin: %v\n%s", err, out)
				}
				want := []string{"Response verify OK", "Cert Status: " + tc.status.String()}
				if tc.status == ocsp.Revoked && tc.reason >= 0 {
					want = append(want, "Revocation Reason: keyCompromise (0x1)")
				}
				if req.Nonce != nil {
					want = append(want, "OCSP Nonce")
				}
				for _, w := range want {
					if !strings.Contains(out, w) {
						t.Errorf("openssl -reqin output lacks %q:\n%s", w, out)
					}
				}
				if strings.Contains(out, "WARNING") || strings.Contains(out, "Revocation Reason") != (tc.status == ocsp.Revoked && tc.reason >= 0) {
					t.Errorf("openssl -reqin output has a warning or an unexpected revocation reason:\n%s", out)
				}

				// With the CertID openssl computes for leaf.pem itself: the
				// response must answer for that certificate.
				args = append([]string{"-issuer", "int.pem"}, tc.args...)
				args = append(args, "-cert", "leaf.pem", "-no_nonce")
				out, err = openssl(t, dir, verifyArgs(args...)...)
				if err != nil {
					t.Fatalf("openssl ocsp -cert: %v\n%s", err, out)
				}
				if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "leaf.pem: "+tc.status.String()) {
					t.Errorf("openssl -cert output lacks %q:\n%s", "leaf.pem: "+tc.status.String(), out)
				}
			})
		}
	}
}

// verifyArgs returns the arguments of "openssl ocsp" that verify resp.der
// against root.pem, with the intermediate int.pem to build the chain, plus
// extra. Certificates are checked at -attime epoch; the status times are
// checked against the wall clock, so -validity_period widens that window
// to a century and only -attime matters.
func verifyArgs(extra ...string) []string {
	args := []string{"ocsp", "-respin", "resp.der", "-CAfile", "root.pem", "-no-CApath", "-no-CAstore",
		"-x509_strict", "-attime", strconv.FormatInt(epoch.Unix(), 10),
		"-validity_period", strconv.Itoa(100 * 365 * 24 * 3600)}
	if !slices.Contains(extra, "-issuer") {
		args = append(args, "-issuer", "int.pem")
	}
	return append(args, extra...)
}

// TestSignOpenSSLDetectsMissingNonce proves TestSignOpenSSL's nonce check
// can fail: a response that drops the request's nonce makes openssl warn.
func TestSignOpenSSLDetectsMissingNonce(t *testing.T) {
	t.Parallel()
	requireOpenSSL(t)
	c := newChain(t, "p256")
	dir := t.TempDir()
	writePEM(t, dir, "root.pem", c.root)
	writePEM(t, dir, "int.pem", c.inter)
	writePEM(t, dir, "leaf.pem", c.leaf(t, randomSerial(t)))
	if out, err := openssl(t, dir, "ocsp", "-issuer", "int.pem", "-cert", "leaf.pem", "-reqout", "req.der"); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	req, err := ocsp.ParseRequest(readFile(t, dir, "req.der"))
	if err != nil || req.Nonce == nil {
		t.Fatalf("ParseRequest = %+v, %v; want a nonce", req, err)
	}
	for _, tc := range []struct {
		name  string
		nonce []byte
		want  string
	}{
		{name: "fail/nonce-dropped", nonce: nil, want: "WARNING: no nonce in response"},
		{name: "fail/nonce-altered", nonce: append([]byte{^req.Nonce[0]}, req.Nonce[1:]...), want: "Nonce Verify error"},
	} {
		der, err := c.responderFor(t).Sign(ocsp.Response{
			Status: ocsp.Good, SerialNumber: req.SerialNumber, HashAlgorithm: req.HashAlgorithm, Reason: -1,
			ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour), ProducedAt: epoch, Nonce: tc.nonce,
		})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "resp.der", der)
		out, _ := openssl(t, dir, verifyArgs("-reqin", "req.der")...)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: openssl output lacks %q:\n%s", tc.name, tc.want, out)
		}
	}
}

func TestSignRefusals(t *testing.T) {
	t.Parallel()
	c := newChain(t, "p256")
	r := c.responderFor(t)
	valid := func() ocsp.Response {
		return ocsp.Response{
			Status: ocsp.Revoked, SerialNumber: big.NewInt(42), HashAlgorithm: crypto.SHA256,
			RevokedAt: epoch.Add(-time.Hour), Reason: xocsp.Superseded,
			ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour), ProducedAt: epoch,
			Nonce: []byte{1, 2, 3},
		}
	}
	tests := []struct {
		name string
		edit func(*ocsp.Response)
	}{
		{name: "ok/valid", edit: func(*ocsp.Response) {}},
		{name: "ok/nonce-128-octets", edit: func(r *ocsp.Response) { r.Nonce = make([]byte, 128) }},
		{name: "ok/serial-zero", edit: func(r *ocsp.Response) { r.SerialNumber = big.NewInt(0) }},
		{name: "ok/sha512-certid", edit: func(r *ocsp.Response) { r.HashAlgorithm = crypto.SHA512 }},
		{name: "ok/non-utc-location", edit: func(r *ocsp.Response) { r.ProducedAt = r.ProducedAt.In(time.FixedZone("X", 3600)) }},
		{name: "ok/good-ignores-reason", edit: func(r *ocsp.Response) { r.Status, r.Reason = ocsp.Good, 7 }},
		{name: "ok/produced-at-responder-not-before", edit: func(r *ocsp.Response) { r.ProducedAt = c.responder.NotBefore }},
		{name: "fail/status-unset", edit: func(r *ocsp.Response) { r.Status = 0 }},
		{name: "fail/status-out-of-range", edit: func(r *ocsp.Response) { r.Status = 4 }},
		{name: "fail/serial-nil", edit: func(r *ocsp.Response) { r.SerialNumber = nil }},
		{name: "fail/serial-negative", edit: func(r *ocsp.Response) { r.SerialNumber = big.NewInt(-1) }},
		{name: "fail/hash-unset", edit: func(r *ocsp.Response) { r.HashAlgorithm = 0 }},
		{name: "fail/hash-md5", edit: func(r *ocsp.Response) { r.HashAlgorithm = crypto.MD5 }},
		{name: "fail/next-update-zero", edit: func(r *ocsp.Response) { r.NextUpdate = time.Time{} }},
		{name: "fail/this-update-zero", edit: func(r *ocsp.Response) { r.ThisUpdate = time.Time{} }},
		{name: "fail/produced-at-zero", edit: func(r *ocsp.Response) { r.ProducedAt = time.Time{} }},
		{name: "fail/next-update-equals-this-update", edit: func(r *ocsp.Response) { r.NextUpdate = r.ThisUpdate }},
		{name: "fail/next-update-before-this-update", edit: func(r *ocsp.Response) { r.NextUpdate = r.ThisUpdate.Add(-time.Second) }},
		{name: "fail/this-update-fractional-second", edit: func(r *ocsp.Response) { r.ThisUpdate = r.ThisUpdate.Add(time.Millisecond) }},
		{name: "fail/produced-at-fractional-second", edit: func(r *ocsp.Response) { r.ProducedAt = r.ProducedAt.Add(time.Nanosecond) }},
		{name: "fail/revoked-at-fractional-second", edit: func(r *ocsp.Response) { r.RevokedAt = r.RevokedAt.Add(time.Microsecond) }},
		{name: "fail/revoked-at-zero", edit: func(r *ocsp.Response) { r.RevokedAt = time.Time{} }},
		{name: "fail/reason-7-unused", edit: func(r *ocsp.Response) { r.Reason = 7 }},
		{name: "fail/reason-11", edit: func(r *ocsp.Response) { r.Reason = 11 }},
		{name: "fail/reason-minus-2", edit: func(r *ocsp.Response) { r.Reason = -2 }},
		{name: "fail/nonce-empty", edit: func(r *ocsp.Response) { r.Nonce = []byte{} }},
		{name: "fail/nonce-129-octets", edit: func(r *ocsp.Response) { r.Nonce = make([]byte, 129) }},
		{name: "fail/produced-before-responder-valid", edit: func(r *ocsp.Response) { r.ProducedAt = c.responder.NotBefore.Add(-time.Second) }},
		{name: "fail/produced-after-responder-expired", edit: func(r *ocsp.Response) { r.ProducedAt = c.responder.NotAfter.Add(time.Second) }},
		{name: "fail/year-10000", edit: func(r *ocsp.Response) { r.NextUpdate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := valid()
			tt.edit(&resp)
			der, err := r.Sign(resp)
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				checkSigned(t, c, "p256", der, resp)
				return
			}
			if !errors.Is(err, ocsp.ErrInvalidResponse) || der != nil {
				t.Fatalf("Sign = %d octets, %v; want nil, ErrInvalidResponse", len(der), err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c := newChain(t, "p256")
	other := newChain(t, "p256")
	byRoot := issue(t, responderTemplate(), c.root, c.responderKey.Public(), c.rootKey)
	noEKU := responderTemplate()
	noEKU.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	noDigitalSignature := responderTemplate()
	noDigitalSignature.KeyUsage = x509.KeyUsageKeyEncipherment
	p224Key := newKey(t, "p224")
	tests := []struct {
		name string
		cfg  ocsp.Config
	}{
		{name: "ok/delegated", cfg: ocsp.Config{Issuer: c.inter, Cert: c.responder, Key: c.responderKey}},
		{name: "fail/no-issuer", cfg: ocsp.Config{Cert: c.responder, Key: c.responderKey}},
		{name: "fail/no-cert", cfg: ocsp.Config{Issuer: c.inter, Key: c.responderKey}},
		{name: "fail/no-key", cfg: ocsp.Config{Issuer: c.inter, Cert: c.responder}},
		{name: "fail/cert-issued-by-root-not-issuer", cfg: ocsp.Config{Issuer: c.inter, Cert: byRoot, Key: c.responderKey}},
		{name: "fail/cert-of-other-issuer", cfg: ocsp.Config{Issuer: other.inter, Cert: c.responder, Key: c.responderKey}},
		{name: "fail/no-ocsp-signing-eku", cfg: ocsp.Config{
			Issuer: c.inter, Cert: issue(t, noEKU, c.inter, c.responderKey.Public(), c.interKey), Key: c.responderKey,
		}},
		{name: "fail/key-usage-without-digital-signature", cfg: ocsp.Config{
			Issuer: c.inter, Cert: issue(t, noDigitalSignature, c.inter, c.responderKey.Public(), c.interKey), Key: c.responderKey,
		}},
		{name: "fail/key-does-not-match-cert", cfg: ocsp.Config{Issuer: c.inter, Cert: c.responder, Key: other.responderKey}},
		{name: "fail/p224-key", cfg: ocsp.Config{
			Issuer: c.inter, Cert: issue(t, responderTemplate(), c.inter, p224Key.Public(), c.interKey), Key: p224Key,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ocsp.New(tt.cfg)
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil || r == nil {
					t.Fatalf("New = %v, %v", r, err)
				}
				return
			}
			if !errors.Is(err, ocsp.ErrInvalidConfig) || r != nil {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidConfig", r, err)
			}
		})
	}
}

// failingSigner is a real key whose Sign always fails, as an HSM that lost
// its session would.
type failingSigner struct{ crypto.Signer }

var errHSM = errors.New("hsm: session closed")

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, errHSM }

func TestSignKeyFailure(t *testing.T) {
	t.Parallel()
	c := newChain(t, "p256")
	r, err := ocsp.New(ocsp.Config{Issuer: c.inter, Cert: c.responder, Key: failingSigner{c.responderKey}})
	if err != nil {
		t.Fatal(err)
	}
	der, err := r.Sign(ocsp.Response{
		Status: ocsp.Good, SerialNumber: big.NewInt(1), HashAlgorithm: crypto.SHA256, Reason: -1,
		ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour), ProducedAt: epoch,
	})
	if !errors.Is(err, errHSM) || der != nil {
		t.Fatalf("Sign = %d octets, %v; want nil, the signer's error", len(der), err)
	}
}
