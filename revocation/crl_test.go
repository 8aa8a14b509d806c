package revocation_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/internal/linttest"
	"github.com/workerca/workerca/internal/tooltest"
	"github.com/workerca/workerca/revocation"
)

// shardURI is the distribution point of the shard the tests sign for.
const shardURI = "http://127.0.0.1:8080/crl/3.crl"

// testCA is a real P-256 root and intermediate, as workerca's hierarchy
// has them: the intermediate is a CA with path length 0, keyCertSign and
// cRLSign, and a subjectKeyIdentifier.
type testCA struct {
	root, intermediate       *x509.Certificate
	rootKey, intermediateKey crypto.Signer
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	return newTestCAWithKey(t, newKey(t))
}

// newTestCAWithKey is newTestCA with an intermediate key of any type.
func newTestCAWithKey(t testing.TB, intermediateKey crypto.Signer) *testCA {
	t.Helper()
	now := catest.Epoch
	ca := &testCA{rootKey: newKey(t), intermediateKey: intermediateKey}
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"workerca test"}, CommonName: "workerca test root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            -1,
	}
	ca.root = sign(t, rootTmpl, rootTmpl, ca.rootKey.Public(), ca.rootKey)
	ca.intermediate = ca.newIntermediate(t, ca.intermediateKey, nil)
	return ca
}

// newIntermediate signs an intermediate for key with the root; edit, if
// set, changes the template first (to make a faulty issuer).
func (ca *testCA) newIntermediate(t testing.TB, key crypto.Signer, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	now := catest.Epoch
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"workerca test"}, CommonName: "workerca test intermediate"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	if edit != nil {
		edit(tmpl)
	}
	return sign(t, tmpl, ca.root, key.Public(), ca.rootKey)
}

// newLeaf signs a worker certificate with serial whose CRL distribution
// point is cdp.
func (ca *testCA) newLeaf(t testing.TB, serial *big.Int, cdp string) *x509.Certificate {
	t.Helper()
	now := catest.Epoch
	id, err := url.Parse("spiffe://workers.test/pool/build/worker/" + serial.String())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"workerca test"}, CommonName: "worker-" + serial.String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id},
		CRLDistributionPoints: []string{cdp},
	}
	return sign(t, tmpl, ca.intermediate, newKey(t).Public(), ca.intermediateKey)
}

// sign signs tmpl, giving it a random serial if it has none and a
// subjectKeyIdentifier (RFC 7093 §2 method 1), and re-parses it.
func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = randomSerial(t)
	}
	if tmpl.SubjectKeyId == nil {
		spki, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if _, err := asn1.Unmarshal(spki, &info); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(info.PublicKey.Bytes)
		tmpl.SubjectKeyId = sum[:20]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatalf("sign %s: %v", tmpl.Subject, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// randomSerial is a 20-octet positive serial, as workerca issues them.
func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&0x7f | 0x01
	return new(big.Int).SetBytes(b)
}

// request is a valid CRL request for shardURI with entries.
func (ca *testCA) request(entries ...revocation.CRLEntry) revocation.CRLRequest {
	now := catest.Epoch
	return revocation.CRLRequest{
		Issuer:            ca.intermediate,
		Signer:            ca.intermediateKey,
		Number:            big.NewInt(42),
		ThisUpdate:        now,
		NextUpdate:        now.Add(24 * time.Hour),
		DistributionPoint: shardURI,
		Entries:           entries,
	}
}

func ptr[T any](v T) *T { return &v }

var (
	oidReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidIDP            = asn1.ObjectIdentifier{2, 5, 29, 28}
)

func findExtension(exts []pkix.Extension, oid asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}

// TestBuildCRLRoundTrip parses a signed CRL back with crypto/x509 and
// checks every field BuildCRL sets, reading the extensions BuildCRL
// encodes by hand with cryptobyte rather than encoding/asn1.
func TestBuildCRLRoundTrip(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	now := catest.Epoch
	compromised := now.Add(-50 * time.Hour)
	long := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1)) // 20 octets
	entries := []revocation.CRLEntry{
		{Serial: big.NewInt(1001), RevokedAt: now.Add(-3 * time.Hour), Reason: 0},
		{Serial: long, RevokedAt: now.Add(-2 * time.Hour), Reason: 1, InvalidityDate: &compromised},
		{Serial: big.NewInt(1003), RevokedAt: now, Reason: 4},
	}
	req := ca.request(entries...)
	req.Number = new(big.Int).Set(long)
	der, err := revocation.BuildCRL(req)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}

	if err := rl.CheckSignatureFrom(ca.intermediate); err != nil {
		t.Errorf("signature does not verify with the intermediate: %v", err)
	}
	if err := rl.CheckSignatureFrom(ca.root); err == nil {
		t.Errorf("signature verifies with the root")
	}
	if v := tbsVersion(t, rl.RawTBSRevocationList); v != 1 {
		t.Errorf("version = %d, want 1 (v2)", v)
	}
	if !bytes.Equal(rl.RawIssuer, ca.intermediate.RawSubject) {
		t.Errorf("issuer = %s, want %s", rl.Issuer, ca.intermediate.Subject)
	}
	if !bytes.Equal(rl.AuthorityKeyId, ca.intermediate.SubjectKeyId) {
		t.Errorf("AKI = %x, want the intermediate's SKI %x", rl.AuthorityKeyId, ca.intermediate.SubjectKeyId)
	}
	if rl.Number.Cmp(long) != 0 {
		t.Errorf("number = %x, want %x", rl.Number, long)
	}
	if !rl.ThisUpdate.Equal(req.ThisUpdate) || !rl.NextUpdate.Equal(req.NextUpdate) {
		t.Errorf("thisUpdate, nextUpdate = %s, %s; want %s, %s", rl.ThisUpdate, rl.NextUpdate, req.ThisUpdate, req.NextUpdate)
	}

	if len(rl.RevokedCertificateEntries) != len(entries) {
		t.Fatalf("%d entries, want %d", len(rl.RevokedCertificateEntries), len(entries))
	}
	for i, got := range rl.RevokedCertificateEntries {
		want := entries[i]
		if got.SerialNumber.Cmp(want.Serial) != 0 || !got.RevocationTime.Equal(want.RevokedAt) || got.ReasonCode != want.Reason {
			t.Errorf("entry %d = %x %s reason %d, want %x %s reason %d", i,
				got.SerialNumber, got.RevocationTime, got.ReasonCode, want.Serial, want.RevokedAt, want.Reason)
		}
		reason, hasReason := findExtension(got.Extensions, oidReasonCode)
		switch {
		case want.Reason == 0 && hasReason:
			t.Errorf("entry %d: unspecified reason is encoded (%x); RFC 5280 §5.3.1 says it SHOULD be absent", i, reason.Value)
		case want.Reason != 0 && !hasReason:
			t.Errorf("entry %d: no reasonCode extension", i)
		case want.Reason != 0 && !bytes.Equal(reason.Value, []byte{0x0a, 0x01, byte(want.Reason)}):
			t.Errorf("entry %d: reasonCode = %x, want ENUMERATED %d", i, reason.Value, want.Reason)
		}
		inv, hasInv := findExtension(got.Extensions, oidInvalidityDate)
		if want.InvalidityDate == nil {
			if hasInv {
				t.Errorf("entry %d: unexpected invalidityDate", i)
			}
			continue
		}
		if !hasInv {
			t.Fatalf("entry %d: no invalidityDate", i)
		}
		if inv.Critical {
			t.Errorf("entry %d: invalidityDate is critical; RFC 5280 §5.3.2 makes it non-critical", i)
		}
		// GeneralizedTime, UTC, whole seconds: YYYYMMDDHHMMSSZ.
		wantInv := append([]byte{0x18, 15}, want.InvalidityDate.UTC().Format("20060102150405Z")...)
		if !bytes.Equal(inv.Value, wantInv) {
			t.Errorf("entry %d: invalidityDate = %x (%q), want GeneralizedTime %q", i, inv.Value, inv.Value, wantInv[2:])
		}
	}

	idp, ok := findExtension(rl.Extensions, oidIDP)
	if !ok {
		t.Fatal("no issuingDistributionPoint")
	}
	if !idp.Critical {
		t.Error("issuingDistributionPoint is not critical (RFC 5280 §5.2.5 says it MUST be)")
	}
	uri, onlyUser := parseIDP(t, idp.Value)
	if !bytes.Equal(uri, []byte(shardURI)) {
		t.Errorf("IDP URI = %q, want %q byte for byte", uri, shardURI)
	}
	if !onlyUser {
		t.Error("IDP onlyContainsUserCerts is not TRUE")
	}
	golden := "3028" + "a023" + "a021" + "861f" + hex.EncodeToString([]byte(shardURI)) + "8101ff"
	if got := hex.EncodeToString(idp.Value); got != golden {
		t.Errorf("IDP = %s, want %s", got, golden)
	}
}

// TestBuildCRLMatchesStdlib checks BuildCRL's own DER writer for entries
// against x509.CreateRevocationList given the same CRL: the signed
// TBSCertList must be byte-identical, for every key type workerca uses
// (whole CRLs too where the signature is deterministic), and for times on
// both sides of the UTCTime/GeneralizedTime switch (RFC 5280 §5.1.2.6).
func TestBuildCRLMatchesStdlib(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	thisUpdate := time.Date(2050, 3, 1, 0, 0, 0, 0, time.UTC) // GeneralizedTime
	entries := []revocation.CRLEntry{
		{Serial: big.NewInt(1), RevokedAt: time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC)},
		{Serial: big.NewInt(0x7f), RevokedAt: time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), Reason: 1},
		{Serial: big.NewInt(0x80), RevokedAt: time.Date(2049, 12, 31, 23, 59, 59, 999, time.UTC), Reason: 2,
			InvalidityDate: ptr(time.Date(2049, 6, 1, 1, 2, 3, 4, time.FixedZone("x", -7*3600)))},
		{Serial: big.NewInt(0xff00), RevokedAt: time.Date(2050, 1, 1, 1, 0, 0, 0, time.FixedZone("y", 3600)), Reason: 10,
			InvalidityDate: ptr(time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC))},
	}
	for r := range 11 {
		if r == 7 || r == 8 {
			continue
		}
		e := revocation.CRLEntry{Serial: randomSerial(t), RevokedAt: catest.Epoch.Add(-time.Duration(r) * time.Hour), Reason: r}
		if r%2 == 1 {
			e.InvalidityDate = ptr(catest.Epoch.Add(-100 * time.Hour))
		}
		entries = append(entries, e)
	}
	// A run long enough that revokedCertificates needs 3 length octets.
	for range 2000 {
		entries = append(entries, revocation.CRLEntry{Serial: randomSerial(t), RevokedAt: catest.Epoch})
	}
	for _, tc := range []struct {
		name          string
		key           crypto.Signer
		deterministic bool
	}{
		{name: "ok/p256", key: newKey(t)},
		{name: "ok/p384", key: p384},
		{name: "ok/rsa-2048", key: rsaKey, deterministic: true},
		{name: "ok/ed25519", key: edKey, deterministic: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ca := newTestCAWithKey(t, tc.key)
			req := ca.request(entries...)
			req.ThisUpdate, req.NextUpdate = thisUpdate, thisUpdate.Add(7*24*time.Hour)
			der, err := revocation.BuildCRL(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.CheckSignatureFrom(ca.intermediate); err != nil {
				t.Fatalf("signature: %v", err)
			}
			idp, _ := findExtension(got.Extensions, oidIDP)
			tmpl := &x509.RevocationList{
				Number: req.Number, ThisUpdate: req.ThisUpdate, NextUpdate: req.NextUpdate,
				ExtraExtensions: []pkix.Extension{idp},
			}
			for _, e := range entries {
				rle := x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt, ReasonCode: e.Reason}
				if e.InvalidityDate != nil {
					v, err := asn1.MarshalWithParams(e.InvalidityDate.UTC(), "generalized")
					if err != nil {
						t.Fatal(err)
					}
					rle.ExtraExtensions = []pkix.Extension{{Id: oidInvalidityDate, Value: v}}
				}
				tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, rle)
			}
			stdDER, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.intermediate, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			want, err := x509.ParseRevocationList(stdDER)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.RawTBSRevocationList, want.RawTBSRevocationList) {
				t.Fatalf("TBSCertList differs from crypto/x509's:\n got %x\nwant %x", got.RawTBSRevocationList, want.RawTBSRevocationList)
			}
			if got.SignatureAlgorithm != want.SignatureAlgorithm {
				t.Errorf("signature algorithm %s, crypto/x509 uses %s", got.SignatureAlgorithm, want.SignatureAlgorithm)
			}
			if tc.deterministic && !bytes.Equal(der, stdDER) {
				t.Errorf("CRL differs from crypto/x509's")
			}
			// No lints: the revocation in 1949 is there for its encoding,
			// and zlint's e_crl_revocation_date_too_early rightly flags it.
		})
	}
}

// tbsVersion reads the version of a TBSCertList (RFC 5280 §5.1).
func tbsVersion(t *testing.T, tbs []byte) int64 {
	t.Helper()
	in := cryptobyte.String(tbs)
	var seq cryptobyte.String
	var v int64
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) {
		t.Fatal("TBSCertList does not start with a version")
	}
	return v
}

// parseIDP reads an IssuingDistributionPoint that holds exactly a
// distributionPoint with one fullName URI and onlyContainsUserCerts.
func parseIDP(t *testing.T, der []byte) (uri []byte, onlyUser bool) {
	t.Helper()
	in := cryptobyte.String(der)
	var seq, dp, fullName cryptobyte.String
	var raw cryptobyte.String
	var user cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&dp, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!dp.ReadASN1(&fullName, cbasn1.Tag(0).Constructed().ContextSpecific()) || !dp.Empty() ||
		!fullName.ReadASN1(&raw, cbasn1.Tag(6).ContextSpecific()) || !fullName.Empty() ||
		!seq.ReadASN1(&user, cbasn1.Tag(1).ContextSpecific()) || !seq.Empty() {
		t.Fatalf("IDP %x is not SEQUENCE { [0] { [0] { [6] URI } }, [1] BOOLEAN }", der)
	}
	return raw, bytes.Equal(user, []byte{0xff})
}

// TestBuildCRLOpenSSL checks the CRL with OpenSSL's own chain and CRL
// checks: the CRL's scope (issuingDistributionPoint with
// onlyContainsUserCerts) must match a leaf whose CDP is the shard URI.
func TestBuildCRLOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := tooltest.Require(t, "openssl")[0]
	ca := newTestCA(t)
	now := catest.Epoch
	revoked := ca.newLeaf(t, randomSerial(t), shardURI)
	good := ca.newLeaf(t, randomSerial(t), shardURI)
	otherShard := ca.newLeaf(t, randomSerial(t), "http://127.0.0.1:8080/crl/4.crl")
	compromised := time.Date(2026, 10, 30, 8, 15, 0, 0, time.UTC)
	der, err := revocation.BuildCRL(ca.request(
		revocation.CRLEntry{Serial: big.NewInt(7), RevokedAt: now.Add(-time.Hour)},
		revocation.CRLEntry{Serial: revoked.SerialNumber, RevokedAt: now.Add(-time.Minute), Reason: 1, InvalidityDate: &compromised},
		revocation.CRLEntry{Serial: otherShard.SerialNumber, RevokedAt: now.Add(-time.Minute), Reason: 4},
	))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPEM := write("root.pem", "CERTIFICATE", ca.root.Raw)
	intPEM := write("int.pem", "CERTIFICATE", ca.intermediate.Raw)
	crlPEM := write("shard.crl.pem", "X509 CRL", der)
	derPath := filepath.Join(dir, "shard.crl")
	if err := os.WriteFile(derPath, der, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("verify", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			leaf    *x509.Certificate
			wantOK  bool
			wantErr string
		}{
			{name: "ok/leaf-not-on-crl", leaf: good, wantOK: true},
			{name: "fail/leaf-revoked", leaf: revoked, wantErr: "error 23 at 0 depth lookup: certificate revoked"},
			// The CRL lists this serial, but the leaf names another
			// shard: the CRL is out of its scope, so OpenSSL has no
			// CRL for it at all rather than finding it revoked.
			{name: "fail/leaf-of-other-shard", leaf: otherShard, wantErr: "error 44 at 0 depth lookup: different CRL scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				leafPEM := write(strings.TrimPrefix(strings.TrimPrefix(tc.name, "ok/"), "fail/")+".pem", "CERTIFICATE", tc.leaf.Raw)
				out, err := exec.Command(openssl, "verify", "-attime", strconv.FormatInt(now.Unix(), 10), "-crl_check",
					"-CAfile", rootPEM, "-untrusted", intPEM, "-CRLfile", crlPEM, leafPEM).CombinedOutput()
				t.Logf("openssl verify: %s", out)
				if tc.wantOK {
					if err != nil || !strings.Contains(string(out), leafPEM+": OK") {
						t.Errorf("openssl verify: %v, want OK", err)
					}
					return
				}
				if err == nil {
					t.Errorf("openssl verify succeeded, want %q", tc.wantErr)
				}
				if !strings.Contains(string(out), tc.wantErr) {
					t.Errorf("openssl verify output lacks %q", tc.wantErr)
				}
				if tc.leaf != otherShard && strings.Contains(string(out), "error 44") {
					t.Errorf("openssl finds the CRL out of scope (error 44)")
				}
			})
		}
	})

	t.Run("text", func(t *testing.T) {
		out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", derPath, "-text", "-noout").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl crl: %v\n%s", err, out)
		}
		text := string(out)
		t.Logf("openssl crl -text:\n%s", text)
		for _, want := range []string{
			"Version 2 (0x1)",
			"X509v3 CRL Number: \n                42",
			// OpenSSL 3.0 prints "Only User Certificates" on the URI's line.
			"X509v3 Issuing Distribution Point: critical\n                Full Name:\n                  URI:" + shardURI + " ",
			"Only User Certificates\n",
			"Serial Number: 07\n        Revocation Date: Nov  1 11:00:00 2026 GMT\n    Serial Number:",
			"X509v3 CRL Reason Code: \n                Key Compromise",
			"Invalidity Date: \n                Oct 30 08:15:00 2026 GMT",
			"X509v3 CRL Reason Code: \n                Superseded",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("openssl crl -text lacks %q", want)
			}
		}
	})
}

// TestBuildCRLLint runs zlint's RFC 5280 and community CRL lints over
// CRLs with every reason BuildCRL accepts, and none.
func TestBuildCRLLint(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	now := catest.Epoch
	var everyReason []revocation.CRLEntry
	for i, reason := range []int{0, 1, 2, 3, 4, 5, 6, 9, 10} {
		e := revocation.CRLEntry{Serial: randomSerial(t), RevokedAt: now.Add(-time.Duration(i+1) * time.Hour), Reason: reason}
		if reason == 1 || reason == 2 || reason == 10 {
			e.InvalidityDate = ptr(now.Add(-48 * time.Hour))
		}
		everyReason = append(everyReason, e)
	}
	for _, tc := range []struct {
		name    string
		entries []revocation.CRLEntry
	}{
		{name: "ok/every-reason", entries: everyReason},
		{name: "ok/empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := revocation.BuildCRL(ca.request(tc.entries...))
			if err != nil {
				t.Fatal(err)
			}
			linttest.CRL(t, der)
		})
	}
}

// TestTestCALint keeps the test CA honest: its certificates pass the same
// lints as the CRLs.
func TestTestCALint(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
	}{
		{name: "ok/root", cert: ca.root},
		{name: "ok/intermediate", cert: ca.intermediate},
		{name: "ok/leaf", cert: ca.newLeaf(t, randomSerial(t), shardURI)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			linttest.Certificate(t, tc.cert)
		})
	}
}

// TestBuildCRLRequests checks what BuildCRL accepts at the edges and
// refuses with ErrInvalidCRL.
func TestBuildCRLRequests(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	now := catest.Epoch
	twoTo159 := new(big.Int).Lsh(big.NewInt(1), 159)
	entry := func(serial int64) revocation.CRLEntry {
		return revocation.CRLEntry{Serial: big.NewInt(serial), RevokedAt: now.Add(-time.Hour)}
	}
	withEntry := func(edit func(*revocation.CRLEntry)) func(*revocation.CRLRequest) {
		return func(r *revocation.CRLRequest) {
			e := entry(99)
			edit(&e)
			r.Entries = append(r.Entries, e)
		}
	}
	otherKey := newKey(t)
	for _, tc := range []struct {
		name string
		edit func(*revocation.CRLRequest)
	}{
		{name: "ok/number-one", edit: func(r *revocation.CRLRequest) { r.Number = big.NewInt(1) }},
		{name: "ok/number-20-octets", edit: func(r *revocation.CRLRequest) { r.Number = new(big.Int).Sub(twoTo159, big.NewInt(1)) }},
		{name: "ok/serial-20-octets", edit: withEntry(func(e *revocation.CRLEntry) { e.Serial = new(big.Int).Sub(twoTo159, big.NewInt(1)) })},
		{name: "ok/revoked-at-this-update", edit: withEntry(func(e *revocation.CRLEntry) { e.RevokedAt = now })},
		{name: "ok/non-utc-times", edit: func(r *revocation.CRLRequest) {
			loc := time.FixedZone("UTC+5", 5*3600)
			r.ThisUpdate, r.NextUpdate = r.ThisUpdate.In(loc), r.NextUpdate.In(loc)
			r.Entries = []revocation.CRLEntry{{Serial: big.NewInt(5), RevokedAt: now.In(loc), InvalidityDate: ptr(now.In(loc))}}
		}},
		{name: "ok/https-uri-with-query", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "https://crl.workers.test/crl/3.crl?x=1" }},

		{name: "fail/nil-issuer", edit: func(r *revocation.CRLRequest) { r.Issuer = nil }},
		{name: "fail/nil-signer", edit: func(r *revocation.CRLRequest) { r.Signer = nil }},
		{name: "fail/issuer-not-ca", edit: func(r *revocation.CRLRequest) {
			r.Issuer = ca.newLeaf(t, randomSerial(t), shardURI)
		}},
		{name: "fail/issuer-without-crlsign", edit: func(r *revocation.CRLRequest) {
			r.Issuer = ca.newIntermediate(t, r.Signer, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCertSign })
		}},
		{name: "fail/issuer-without-ski", edit: func(r *revocation.CRLRequest) {
			r.Issuer = ca.newIntermediate(t, r.Signer, nil)
			r.Issuer.SubjectKeyId = nil // Go always writes one into a CA certificate it signs
		}},
		{name: "fail/signer-not-issuer-key", edit: func(r *revocation.CRLRequest) { r.Signer = otherKey }},
		{name: "fail/nil-number", edit: func(r *revocation.CRLRequest) { r.Number = nil }},
		{name: "fail/zero-number", edit: func(r *revocation.CRLRequest) { r.Number = big.NewInt(0) }},
		{name: "fail/negative-number", edit: func(r *revocation.CRLRequest) { r.Number = big.NewInt(-1) }},
		{name: "fail/number-21-octets", edit: func(r *revocation.CRLRequest) { r.Number = twoTo159 }},
		{name: "fail/no-this-update", edit: func(r *revocation.CRLRequest) { r.ThisUpdate = time.Time{} }},
		{name: "fail/no-next-update", edit: func(r *revocation.CRLRequest) { r.NextUpdate = time.Time{} }},
		{name: "fail/next-update-equals-this-update", edit: func(r *revocation.CRLRequest) { r.NextUpdate = r.ThisUpdate }},
		{name: "fail/next-update-before-this-update", edit: func(r *revocation.CRLRequest) { r.NextUpdate = r.ThisUpdate.Add(-time.Second) }},
		{name: "fail/empty-distribution-point", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "" }},
		{name: "fail/non-ascii-distribution-point", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "http://crl.wörkers.test/crl/3.crl" }},
		{name: "fail/distribution-point-with-space", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "http://127.0.0.1/crl/3 .crl" }},
		{name: "fail/distribution-point-with-nul", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "http://127.0.0.1/crl/3.crl\x00" }},
		{name: "fail/relative-distribution-point", edit: func(r *revocation.CRLRequest) { r.DistributionPoint = "/crl/3.crl" }},
		{name: "fail/nil-serial", edit: withEntry(func(e *revocation.CRLEntry) { e.Serial = nil })},
		{name: "fail/zero-serial", edit: withEntry(func(e *revocation.CRLEntry) { e.Serial = big.NewInt(0) })},
		{name: "fail/negative-serial", edit: withEntry(func(e *revocation.CRLEntry) { e.Serial = big.NewInt(-5) })},
		{name: "fail/serial-21-octets", edit: withEntry(func(e *revocation.CRLEntry) { e.Serial = twoTo159 })},
		{name: "fail/duplicate-serial", edit: func(r *revocation.CRLRequest) {
			r.Entries = []revocation.CRLEntry{entry(1), entry(2), entry(3), entry(2)}
		}},
		{name: "fail/no-revocation-time", edit: withEntry(func(e *revocation.CRLEntry) { e.RevokedAt = time.Time{} })},
		{name: "fail/revoked-after-this-update", edit: withEntry(func(e *revocation.CRLEntry) { e.RevokedAt = now.Add(time.Second) })},
		{name: "fail/negative-reason", edit: withEntry(func(e *revocation.CRLEntry) { e.Reason = -1 })},
		{name: "fail/reason-7-unassigned", edit: withEntry(func(e *revocation.CRLEntry) { e.Reason = 7 })},
		{name: "fail/reason-8-remove-from-crl", edit: withEntry(func(e *revocation.CRLEntry) { e.Reason = 8 })},
		{name: "fail/reason-11", edit: withEntry(func(e *revocation.CRLEntry) { e.Reason = 11 })},
		{name: "fail/zero-invalidity-date", edit: withEntry(func(e *revocation.CRLEntry) { e.InvalidityDate = &time.Time{} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := ca.request(entry(1), entry(2))
			tc.edit(&req)
			der, err := revocation.BuildCRL(req)
			if strings.HasPrefix(tc.name, "ok/") {
				if err != nil {
					t.Fatalf("BuildCRL: %v", err)
				}
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				if err := rl.CheckSignatureFrom(req.Issuer); err != nil {
					t.Error(err)
				}
				linttest.CRL(t, der)
				return
			}
			if !errors.Is(err, revocation.ErrInvalidCRL) {
				t.Fatalf("BuildCRL error = %v, want ErrInvalidCRL", err)
			}
			if der != nil {
				t.Errorf("BuildCRL returned %d bytes with its error", len(der))
			}
			t.Logf("%v", err)
		})
	}
}

// BenchmarkBuildCRL signs one CRL of each size with a P-256 intermediate.
// Entries carry 20-octet serials, a mix of reasons and some invalidity
// dates, like workerca's. For the peak memory of the 1M case, run it alone
// under /usr/bin/time -v:
//
//	go test -c -o /tmp/revocation.test ./revocation/
//	/usr/bin/time -v /tmp/revocation.test -test.run '^$' -test.bench 'BuildCRL/1M' -test.benchtime 1x -test.benchmem
func BenchmarkBuildCRL(b *testing.B) {
	ca := newTestCA(b)
	now := catest.Epoch
	for _, size := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		n := size.n
		b.Run(size.name, func(b *testing.B) {
			entries := make([]revocation.CRLEntry, n)
			inv := now.Add(-72 * time.Hour)
			for i := range entries {
				entries[i] = revocation.CRLEntry{Serial: randomSerial(b), RevokedAt: now.Add(-time.Duration(i) * time.Second), Reason: []int{0, 1, 4, 5}[i%4]}
				if i%4 == 1 {
					entries[i].InvalidityDate = &inv
				}
			}
			req := ca.request(entries...)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				der, err := revocation.BuildCRL(req)
				if err != nil {
					b.Fatal(err)
				}
				size = len(der)
			}
			b.ReportMetric(float64(size), "crl-bytes")
		})
	}
}
