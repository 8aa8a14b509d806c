package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/revocation/ocsp"
)

// fixtureSerial is the serial of the leaf the testdata requests ask about.
var fixtureSerial = big.NewInt(0x0123456789abcdef)

// fixtureIssuer loads testdata/issuer.pem, the issuer of the testdata
// requests (see testdata/gen.sh).
func fixtureIssuer(t testing.TB) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readFile(t, "testdata", "issuer.pem"))
	if block == nil {
		t.Fatal("testdata/issuer.pem: no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlv encodes one DER element with a definite, minimal length.
func tlv(tag byte, contents ...[]byte) []byte {
	body := bytes.Join(contents, nil)
	out := []byte{tag}
	switch n := len(body); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		panic("tlv: too long")
	}
	return append(out, body...)
}

// oid returns the DER of an OBJECT IDENTIFIER.
func oid(arcs ...int) []byte {
	b, err := asn1.Marshal(asn1.ObjectIdentifier(arcs))
	if err != nil {
		panic(err)
	}
	return b
}

// OIDs the hand-built requests use, written out here rather than taken from
// the package under test.
var (
	derSHA1   = oid(1, 3, 14, 3, 2, 26)
	derSHA256 = oid(2, 16, 840, 1, 101, 3, 4, 2, 1)
	derMD5    = oid(1, 2, 840, 113549, 2, 5)
	derNonce  = oid(1, 3, 6, 1, 5, 5, 7, 48, 1, 2)
	derPrivTL = oid(1, 3, 6, 1, 4, 1, 55555, 1) // an extension nobody knows
	derNULL   = []byte{0x05, 0x00}
)

// extension encodes an Extension whose extnValue holds value.
func extension(id []byte, critical bool, value []byte) []byte {
	var crit []byte
	if critical {
		crit = tlv(0x01, []byte{0xff})
	}
	return tlv(0x30, id, crit, tlv(0x04, value))
}

// nonceExtension encodes id-pkix-ocsp-nonce as RFC 9654 §2.1 and OpenSSL
// do: extnValue is the DER of an OCTET STRING holding the nonce.
func nonceExtension(n []byte) []byte { return extension(derNonce, false, tlv(0x04, n)) }

// reqParts are the pieces of a hand-built OCSPRequest, each a complete DER
// element or contents, so a test can break exactly one.
type reqParts struct {
	hashAlg       []byte   // CertID hashAlgorithm AlgorithmIdentifier
	nameHash      []byte   // issuerNameHash OCTET STRING
	keyHash       []byte   // issuerKeyHash OCTET STRING
	serial        []byte   // serialNumber INTEGER; nil leaves it out
	singleExts    [][]byte // singleRequestExtensions
	version       []byte   // contents of version [0]; nil leaves it out
	requestor     []byte   // contents of requestorName [1]; nil leaves it out
	requests      int      // how many copies of the Request; 0 means 1
	exts          [][]byte // requestExtensions
	rawExts       []byte   // contents of requestExtensions [2], instead of exts
	signature     []byte   // contents of optionalSignature [0]; nil leaves it out
	afterTBS      []byte   // appended inside tbsRequest after everything
	requestsEmpty bool     // an empty requestList
}

// goodParts returns the parts of a valid request about fixtureSerial from
// issuer with h, carrying nonce unless it is nil.
func goodParts(t testing.TB, issuer *x509.Certificate, h crypto.Hash, nonce []byte) reqParts {
	t.Helper()
	var alg []byte
	switch h {
	case crypto.SHA1:
		alg = tlv(0x30, derSHA1, derNULL)
	case crypto.SHA256:
		alg = tlv(0x30, derSHA256, derNULL)
	default:
		t.Fatalf("goodParts: hash %v", h)
	}
	name, key := testIssuerHashes(t, issuer, h)
	serial, err := asn1.Marshal(fixtureSerial)
	if err != nil {
		t.Fatal(err)
	}
	p := reqParts{hashAlg: alg, nameHash: tlv(0x04, name), keyHash: tlv(0x04, key), serial: serial}
	if nonce != nil {
		p.exts = [][]byte{nonceExtension(nonce)}
	}
	return p
}

// testIssuerHashes computes a CertID's issuer hashes with encoding/asn1,
// independently of the package under test.
func testIssuerHashes(t testing.TB, issuer *x509.Certificate, h crypto.Hash) (name, key []byte) {
	t.Helper()
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	hn, hk := h.New(), h.New()
	hn.Write(issuer.RawSubject)
	hk.Write(spki.PublicKey.RightAlign())
	return hn.Sum(nil), hk.Sum(nil)
}

// der encodes p.
func (p reqParts) der() []byte {
	var single []byte
	if p.singleExts != nil {
		single = tlv(0xa0, tlv(0x30, p.singleExts...))
	}
	request := tlv(0x30, tlv(0x30, p.hashAlg, p.nameHash, p.keyHash, p.serial), single)
	n := max(p.requests, 1)
	if p.requestsEmpty {
		n = 0
	}
	var tbs [][]byte
	if p.version != nil {
		tbs = append(tbs, tlv(0xa0, p.version))
	}
	if p.requestor != nil {
		tbs = append(tbs, tlv(0xa1, p.requestor))
	}
	tbs = append(tbs, tlv(0x30, bytes.Repeat(request, n)))
	switch {
	case p.rawExts != nil:
		tbs = append(tbs, tlv(0xa2, p.rawExts))
	case p.exts != nil:
		tbs = append(tbs, tlv(0xa2, tlv(0x30, p.exts...)))
	}
	tbs = append(tbs, p.afterTBS)
	var sig []byte
	if p.signature != nil {
		sig = tlv(0xa0, p.signature)
	}
	return tlv(0x30, tlv(0x30, tbs...), sig)
}

func TestParseRequestFixtures(t *testing.T) {
	t.Parallel()
	issuer := fixtureIssuer(t)
	tests := []struct {
		file      string
		hash      crypto.Hash
		nonceLen  int // 0: no nonce
		malformed bool
	}{
		{file: "sha1-nonce.der", hash: crypto.SHA1, nonceLen: 16},
		{file: "sha1-no-nonce.der", hash: crypto.SHA1},
		{file: "sha256-nonce.der", hash: crypto.SHA256, nonceLen: 16},
		{file: "sha256-no-nonce.der", hash: crypto.SHA256},
		{file: "sha384-nonce.der", hash: crypto.SHA384, nonceLen: 16},
		{file: "sha512-no-nonce.der", hash: crypto.SHA512},
		{file: "signed-with-requestor-name.der", hash: crypto.SHA1, nonceLen: 16},
		{file: "bad-two-requests.der", malformed: true},
	}
	for _, tt := range tests {
		name := "ok/" + strings.TrimSuffix(tt.file, ".der")
		if tt.malformed {
			name = "fail/" + strings.TrimSuffix(strings.TrimPrefix(tt.file, "bad-"), ".der")
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req, err := ocsp.ParseRequest(readFile(t, "testdata", tt.file))
			if tt.malformed {
				if !errors.Is(err, ocsp.ErrMalformed) || req != nil {
					t.Fatalf("ParseRequest = %v, %v; want nil, ErrMalformed", req, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			checkRequest(t, req, issuer, tt.hash, fixtureSerial, tt.nonceLen)
		})
	}
}

// checkRequest asserts what ParseRequest returned.
func checkRequest(t *testing.T, req *ocsp.Request, issuer *x509.Certificate, h crypto.Hash, serial *big.Int, nonceLen int) {
	t.Helper()
	if req.HashAlgorithm != h {
		t.Errorf("HashAlgorithm = %v, want %v", req.HashAlgorithm, h)
	}
	if req.SerialNumber.Cmp(serial) != 0 {
		t.Errorf("SerialNumber = %x, want %x", req.SerialNumber, serial)
	}
	if len(req.Nonce) != nonceLen || (nonceLen == 0) != (req.Nonce == nil) {
		t.Errorf("Nonce = %x (nil %t), want %d octets", req.Nonce, req.Nonce == nil, nonceLen)
	}
	name, key := testIssuerHashes(t, issuer, h)
	if !bytes.Equal(req.IssuerNameHash, name) || !bytes.Equal(req.IssuerKeyHash, key) {
		t.Errorf("issuer hashes = %x, %x; want %x, %x", req.IssuerNameHash, req.IssuerKeyHash, name, key)
	}
	if !req.MatchesIssuer(issuer) {
		t.Error("MatchesIssuer(issuer) = false")
	}
}

// TestParseRequestOpenSSL has the real openssl binary make requests for a
// freshly issued certificate, as a client would, and parses them.
func TestParseRequestOpenSSL(t *testing.T) {
	t.Parallel()
	requireOpenSSL(t)
	c := newChain(t, "p256")
	serial := randomSerial(t)
	dir := t.TempDir()
	writePEM(t, dir, "int.pem", c.inter)
	writePEM(t, dir, "leaf.pem", c.leaf(t, serial))

	tests := []struct {
		name     string
		args     []string
		hash     crypto.Hash
		nonceLen int
		wantErr  error
	}{
		{name: "ok/sha1-default-nonce", hash: crypto.SHA1, nonceLen: 16},
		{name: "ok/sha1-no-nonce", args: []string{"-no_nonce"}, hash: crypto.SHA1},
		{name: "ok/sha256-nonce", args: []string{"-sha256"}, hash: crypto.SHA256, nonceLen: 16},
		{name: "ok/sha256-no-nonce", args: []string{"-sha256", "-no_nonce"}, hash: crypto.SHA256},
		{name: "ok/sha512-nonce", args: []string{"-sha512"}, hash: crypto.SHA512, nonceLen: 16},
		{name: "fail/two-certs", args: []string{"-cert", "leaf.pem"}, wantErr: ocsp.ErrMalformed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := fmt.Sprintf("req%d.der", i)
			args := append([]string{"ocsp", "-issuer", "int.pem"}, tt.args...)
			args = append(args, "-cert", "leaf.pem", "-reqout", out)
			if msg, err := openssl(t, dir, args...); err != nil {
				t.Fatalf("openssl %v: %v\n%s", args, err, msg)
			}
			req, err := ocsp.ParseRequest(readFile(t, dir, out))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseRequest error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			checkRequest(t, req, c.inter, tt.hash, serial, tt.nonceLen)
			if req.MatchesIssuer(c.root) {
				t.Error("MatchesIssuer(root) = true for a request about the intermediate's leaf")
			}
		})
	}
}

// TestParseRequestXCrypto parses requests made by golang.org/x/crypto/ocsp
// with every hash it offers.
func TestParseRequestXCrypto(t *testing.T) {
	t.Parallel()
	c := newChain(t, "p256")
	serial := randomSerial(t)
	leaf := c.leaf(t, serial)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run("ok/"+strings.ToLower(strings.ReplaceAll(h.String(), "-", "")), func(t *testing.T) {
			t.Parallel()
			der, err := xocsp.CreateRequest(leaf, c.inter, &xocsp.RequestOptions{Hash: h})
			if err != nil {
				t.Fatal(err)
			}
			req, err := ocsp.ParseRequest(der)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			checkRequest(t, req, c.inter, h, serial, 0)
		})
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	issuer := fixtureIssuer(t)
	nonce16 := bytes.Repeat([]byte{0xa5}, 16)
	good := func(edit func(p *reqParts)) []byte {
		p := goodParts(t, issuer, crypto.SHA256, nonce16)
		edit(&p)
		return p.der()
	}
	valid := good(func(*reqParts) {})

	tests := []struct {
		name     string
		der      []byte
		nonceLen int // for ok cases; -1: no nonce
		serial   *big.Int
	}{
		{name: "ok/nonce-16-octets", der: valid, nonceLen: 16},
		{name: "ok/no-extensions", der: good(func(p *reqParts) { p.exts = nil }), nonceLen: -1},
		{name: "ok/nonce-1-octet", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension([]byte{7})} }), nonceLen: 1},
		{name: "ok/nonce-32-octets", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension(make([]byte, 32))} }), nonceLen: 32},
		// RFC 9654 §2.1 raised the limit of RFC 8954 from 32 to 128 octets.
		{name: "ok/nonce-33-octets", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension(make([]byte, 33))} }), nonceLen: 33},
		{name: "ok/nonce-128-octets", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension(make([]byte, 128))} }), nonceLen: 128},
		{name: "ok/nonce-marked-critical", der: good(func(p *reqParts) {
			p.exts = [][]byte{extension(derNonce, true, tlv(0x04, nonce16))}
		}), nonceLen: 16},
		{name: "ok/unknown-non-critical-extension-ignored", der: good(func(p *reqParts) {
			p.exts = append(p.exts, extension(derPrivTL, false, []byte("anything")))
		}), nonceLen: 16},
		{name: "ok/unknown-extension-with-large-arc-oid", der: good(func(p *reqParts) {
			// 2.25.<128-bit UUID>: an arc cryptobyte's OID reader cannot hold.
			p.exts = append(p.exts, extension([]byte{0x06, 0x14, 0x69, 0x83, 0xaa, 0xa7, 0xb8, 0xd6, 0xa1, 0xa8, 0xd2, 0x9f, 0xe9, 0xb7, 0xbd, 0xe4, 0x8b, 0xd2, 0xe9, 0xa6, 0xd3, 0x14}, false, derNULL))
		}), nonceLen: 16},
		{name: "ok/non-critical-single-extension-ignored", der: good(func(p *reqParts) {
			p.singleExts = [][]byte{extension(derPrivTL, false, derNULL)}
		}), nonceLen: 16},
		{name: "ok/hash-parameters-absent", der: good(func(p *reqParts) { p.hashAlg = tlv(0x30, derSHA256) }), nonceLen: 16},
		{name: "ok/version-v1-explicit", der: good(func(p *reqParts) { p.version = []byte{0x02, 0x01, 0x00} }), nonceLen: 16},
		{name: "ok/requestor-name-ignored", der: good(func(p *reqParts) {
			p.requestor = tlv(0x82, []byte("client.example")) // dNSName
		}), nonceLen: 16},
		{name: "ok/signature-ignored", der: good(func(p *reqParts) {
			// Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING }: not verified.
			p.signature = tlv(0x30, tlv(0x30, oid(1, 2, 840, 10045, 4, 3, 2)), tlv(0x03, []byte{0, 1, 2, 3}))
		}), nonceLen: 16},
		{name: "ok/serial-zero", der: good(func(p *reqParts) { p.serial = []byte{0x02, 0x01, 0x00} }), nonceLen: 16, serial: big.NewInt(0)},

		{name: "fail/nil", der: nil},
		{name: "fail/empty", der: []byte{}},
		{name: "fail/garbage", der: []byte("GET /ocsp HTTP/1.1\r\n")},
		{name: "fail/not-a-sequence", der: tlv(0x04, valid)},
		{name: "fail/trailing-byte", der: append(bytes.Clone(valid), 0x00)},
		{name: "fail/trailing-element", der: append(bytes.Clone(valid), derNULL...)},
		{name: "fail/non-minimal-length", der: append([]byte{0x30, 0x81, byte(len(valid) - 2)}, valid[2:]...)},
		{name: "fail/indefinite-length", der: append(append([]byte{0x30, 0x80}, valid[2:]...), 0x00, 0x00)},
		{name: "fail/empty-request-list", der: good(func(p *reqParts) { p.requestsEmpty = true })},
		{name: "fail/two-requests", der: good(func(p *reqParts) { p.requests = 2 })},
		{name: "fail/data-after-extensions", der: good(func(p *reqParts) { p.afterTBS = derNULL })},
		{name: "fail/nonce-empty", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension(nil)} })},
		{name: "fail/nonce-129-octets", der: good(func(p *reqParts) { p.exts = [][]byte{nonceExtension(make([]byte, 129))} })},
		{name: "fail/nonce-not-octet-string", der: good(func(p *reqParts) {
			p.exts = [][]byte{extension(derNonce, false, tlv(0x02, []byte{0x05}))}
		})},
		{name: "fail/nonce-raw-in-extn-value", der: good(func(p *reqParts) {
			// RFC 2560-style nonce, octets straight in extnValue.
			p.exts = [][]byte{extension(derNonce, false, []byte("0123456789abcdef"))}
		})},
		{name: "fail/nonce-trailing-data", der: good(func(p *reqParts) {
			p.exts = [][]byte{extension(derNonce, false, append(tlv(0x04, nonce16), 0x00))}
		})},
		{name: "fail/nonce-twice", der: good(func(p *reqParts) { p.exts = append(p.exts, nonceExtension(nonce16)) })},
		{name: "fail/unknown-critical-extension", der: good(func(p *reqParts) {
			p.exts = append(p.exts, extension(derPrivTL, true, derNULL))
		})},
		{name: "fail/unknown-critical-single-extension", der: good(func(p *reqParts) {
			p.singleExts = [][]byte{extension(derPrivTL, true, derNULL)}
		})},
		{name: "fail/empty-extensions", der: good(func(p *reqParts) { p.exts = nil; p.rawExts = tlv(0x30) })},
		{name: "fail/critical-not-der-boolean", der: good(func(p *reqParts) {
			p.exts = [][]byte{tlv(0x30, derNonce, tlv(0x01, []byte{0x01}), tlv(0x04, tlv(0x04, nonce16)))}
		})},
		{name: "fail/extension-oid-padded", der: good(func(p *reqParts) {
			p.exts = append(p.exts, extension([]byte{0x06, 0x03, 0x2b, 0x80, 0x01}, false, derNULL))
		})},
		{name: "fail/unknown-hash-oid-md5", der: good(func(p *reqParts) { p.hashAlg = tlv(0x30, derMD5, derNULL) })},
		{name: "fail/hash-parameters-not-null", der: good(func(p *reqParts) {
			p.hashAlg = tlv(0x30, derSHA256, []byte{0x02, 0x01, 0x00})
		})},
		{name: "fail/sha256-oid-with-sha1-hashes", der: good(func(p *reqParts) {
			p.nameHash, p.keyHash = tlv(0x04, make([]byte, 20)), tlv(0x04, make([]byte, 20))
		})},
		{name: "fail/key-hash-one-octet-short", der: good(func(p *reqParts) { p.keyHash = tlv(0x04, make([]byte, 31)) })},
		{name: "fail/serial-missing", der: good(func(p *reqParts) { p.serial = nil })},
		{name: "fail/serial-negative", der: good(func(p *reqParts) { p.serial = []byte{0x02, 0x01, 0xff} })},
		{name: "fail/serial-not-minimal", der: good(func(p *reqParts) { p.serial = []byte{0x02, 0x02, 0x00, 0x01} })},
		{name: "fail/serial-empty", der: good(func(p *reqParts) { p.serial = []byte{0x02, 0x00} })},
		{name: "fail/version-v2", der: good(func(p *reqParts) { p.version = []byte{0x02, 0x01, 0x01} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := ocsp.ParseRequest(tt.der)
			if strings.HasPrefix(tt.name, "fail/") {
				if !errors.Is(err, ocsp.ErrMalformed) || req != nil {
					t.Fatalf("ParseRequest = %+v, %v; want nil, ErrMalformed", req, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			serial := fixtureSerial
			if tt.serial != nil {
				serial = tt.serial
			}
			checkRequest(t, req, issuer, crypto.SHA256, serial, max(tt.nonceLen, 0))
		})
	}
}

// TestParseRequestDoesNotAlias proves the Request owns its bytes: a caller
// may reuse its read buffer.
func TestParseRequestDoesNotAlias(t *testing.T) {
	t.Parallel()
	issuer := fixtureIssuer(t)
	der := goodParts(t, issuer, crypto.SHA1, []byte("0123456789abcdef")).der()
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	for i := range der {
		der[i] = 0
	}
	checkRequest(t, req, issuer, crypto.SHA1, fixtureSerial, 16)
	if string(req.Nonce) != "0123456789abcdef" {
		t.Errorf("Nonce = %q after the input was cleared", req.Nonce)
	}
}

// TestParseRequestPrefixes feeds every proper prefix of real requests: each
// must be refused with ErrMalformed, and none may panic.
func TestParseRequestPrefixes(t *testing.T) {
	t.Parallel()
	for _, der := range seedRequests(t) {
		for n := range len(der) {
			req, err := ocsp.ParseRequest(der[:n])
			if !errors.Is(err, ocsp.ErrMalformed) || req != nil {
				t.Fatalf("ParseRequest(%x) = %v, %v; want nil, ErrMalformed", der[:n], req, err)
			}
		}
	}
}

func TestMatchesIssuer(t *testing.T) {
	t.Parallel()
	c := newChain(t, "p256")
	other := newChain(t, "p256")
	leaf := c.leaf(t, randomSerial(t))
	request := func(t *testing.T, h crypto.Hash) *ocsp.Request {
		der, err := xocsp.CreateRequest(leaf, c.inter, &xocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	tests := []struct {
		name   string
		req    func(t *testing.T) *ocsp.Request
		issuer *x509.Certificate
		want   bool
	}{
		{name: "ok/sha1", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA1) }, issuer: c.inter, want: true},
		{name: "ok/sha256", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA256) }, issuer: c.inter, want: true},
		{name: "ok/sha384", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA384) }, issuer: c.inter, want: true},
		{name: "fail/root-is-not-the-issuer", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA256) }, issuer: c.root},
		{name: "fail/other-intermediate", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA256) }, issuer: other.inter},
		{name: "fail/nil-issuer", req: func(t *testing.T) *ocsp.Request { return request(t, crypto.SHA256) }},
		{name: "fail/name-matches-key-does-not", req: func(t *testing.T) *ocsp.Request {
			r := request(t, crypto.SHA256)
			r.IssuerKeyHash[0] ^= 1
			return r
		}, issuer: c.inter},
		{name: "fail/hash-algorithm-changed", req: func(t *testing.T) *ocsp.Request {
			r := request(t, crypto.SHA256)
			r.HashAlgorithm = crypto.SHA512_256
			return r
		}, issuer: c.inter},
	}
	// The Responder of an issuer answers as Request.MatchesIssuer does
	// for it, from the hashes it computed once.
	responders := map[*x509.Certificate]*ocsp.Responder{c.inter: c.responderFor(t), other.inter: other.responderFor(t)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req(t)
			if got := req.MatchesIssuer(tt.issuer); got != tt.want {
				t.Errorf("MatchesIssuer = %t, want %t", got, tt.want)
			}
			if r, ok := responders[tt.issuer]; ok {
				if got := r.MatchesIssuer(req); got != tt.want {
					t.Errorf("Responder.MatchesIssuer = %t, want %t", got, tt.want)
				}
			}
		})
	}
}

// seedRequests returns real, valid requests: the OpenSSL fixtures and ones
// built here, with and without nonces, for the prefix test and the fuzzer.
func seedRequests(t testing.TB) [][]byte {
	t.Helper()
	issuer := fixtureIssuer(t)
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join("testdata", "*.der"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.der fixtures: %v", err)
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "bad-") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		seeds = append(seeds,
			goodParts(t, issuer, h, nil).der(),
			goodParts(t, issuer, h, bytes.Repeat([]byte{0x5a}, 32)).der())
	}
	return seeds
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	f.Add(readFile(f, "testdata", "bad-two-requests.der"))
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			if !errors.Is(err, ocsp.ErrMalformed) || req != nil {
				t.Fatalf("ParseRequest = %v, %v; errors must be nil, ErrMalformed", req, err)
			}
			return
		}
		if req.SerialNumber == nil || req.SerialNumber.Sign() < 0 {
			t.Fatalf("SerialNumber = %v", req.SerialNumber)
		}
		if size := req.HashAlgorithm.Size(); len(req.IssuerNameHash) != size || len(req.IssuerKeyHash) != size {
			t.Fatalf("hash lengths %d, %d for %v", len(req.IssuerNameHash), len(req.IssuerKeyHash), req.HashAlgorithm)
		}
		if req.Nonce != nil && (len(req.Nonce) < 1 || len(req.Nonce) > ocsp.MaxNonceLen) {
			t.Fatalf("nonce of %d octets", len(req.Nonce))
		}
	})
}
