package tpmattest

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
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/internal/errtest"
	"github.com/workerca/workerca/internal/sharedtestdata"
	"github.com/workerca/workerca/internal/tpmtest"
)

// checkErr asserts err is want (a sentinel of this package, nil, or
// errtest.Any) and no other sentinel.
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	errtest.Check(t, err, want, "tpm: ", ErrEKMalformed, ErrEKUntrusted)
}

// realEK is one folder of ../shared/testdata/attestation/tpm-ek.
type realEK struct {
	dir string
	// vendor groups folders by manufacturer (the folder name's prefix).
	vendor                       string
	manufacturer, model, version string
	issued                       time.Time // max(notBefore of the chain) + 1 day
	spacedIssuer                 bool      // the Intel GLK issuer-name quirk
	tooEarly                     time.Time // inside the EK's validity, before its CA's
	chainLen                     int
	wantHash                     string // openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum
	ekIsECDSA                    bool
}

// later is inside every real chain's validity (the earliest notAfter is
// the Infineon CA 007 EK's, 2030-12-22).
var later = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// realEKs lists every folder with the values read from its SOURCE.txt
// (openssl x509 -text). The issued pins are max(notBefore)+1d, as there.
var realEKs = []realEK{
	{
		dir: "infineon-slb9665-ca022-digicert", vendor: "infineon",
		manufacturer: "id:49465800", model: "SLB 9665", version: "id:053D",
		issued: time.Date(2017, 4, 27, 15, 58, 40, 0, time.UTC), chainLen: 3,
	},
	{
		dir: "infineon-slb9665-ca029-immune", vendor: "infineon",
		manufacturer: "id:49465800", model: "SLB 9665", version: "id:053E",
		issued: time.Date(2021, 1, 30, 23, 0, 47, 0, time.UTC), chainLen: 3,
	},
	{
		dir: "infineon-slb9670-ca007-isecl", vendor: "infineon",
		manufacturer: "id:49465800", model: "SLB 9670 TPM2.0", version: "id:0728",
		issued: time.Date(2015, 12, 23, 13, 6, 44, 0, time.UTC), chainLen: 3,
		wantHash: "65147797daa5bf027449c5b7acedba4d302f553af506248aad9113c8fe90de9e",
	},
	{
		// The EK (notBefore 2017-02-23) predates the version of
		// Manufacturing CA 020 in the stores (notBefore 2017-03-21).
		dir: "infineon-slb9670-ca020-digicert", vendor: "infineon",
		manufacturer: "id:49465800", model: "SLB 9670 TPM2.0", version: "id:073D",
		issued:   time.Date(2017, 3, 22, 13, 21, 7, 0, time.UTC),
		tooEarly: time.Date(2017, 2, 24, 4, 41, 59, 0, time.UTC), chainLen: 3,
	},
	{
		dir: "intel-ptt-cml-ecc", vendor: "intel",
		manufacturer: "id:494E5443", model: "CML", version: "id:01F4000E",
		issued: time.Date(2020, 3, 14, 0, 0, 0, 0, time.UTC), chainLen: 3, ekIsECDSA: true,
		wantHash: "a97c1c88d03cf952c115bf63467c51704e335398245e21f6c70aacd3ce325c73",
	},
	{
		// Issuer "... GLK_EPID_PROD pid:7", intermediate subject
		// "... GLK_EPID_PROD  pid:7".
		dir: "intel-ptt-glk-ecc", vendor: "intel",
		manufacturer: "id:494E5443", model: "GLK", version: "id:00020000",
		issued: time.Date(2019, 3, 15, 0, 0, 0, 0, time.UTC), chainLen: 3, ekIsECDSA: true,
		spacedIssuer: true,
	},
	{
		dir: "intel-ptt-spt-h-rsa", vendor: "intel",
		manufacturer: "id:494E5443", model: "SPT", version: "id:00020000",
		issued: time.Date(2015, 5, 23, 0, 0, 0, 0, time.UTC), chainLen: 3,
	},
	{
		// One multi-valued RDN in the SAN, PrintableStrings.
		dir: "nuvoton-npct6xx-root1110-isecl", vendor: "nuvoton",
		manufacturer: "id:4E544300", model: "NPCT6xx", version: "id:13",
		issued: time.Date(2018, 5, 1, 9, 9, 42, 0, time.UTC), chainLen: 2,
	},
	{
		dir: "nuvoton-npct6xx-root2110-goattestation", vendor: "nuvoton",
		manufacturer: "id:4E544300", model: "NPCT6xx", version: "id:13",
		issued: time.Date(2017, 10, 19, 23, 49, 20, 0, time.UTC), chainLen: 2,
		wantHash: "6f7039b1f70708422c8207aa4760544967c949b353fbeabfe2086604d66dedec",
	},
	{
		dir: "nuvoton-npct75x-root2111-immune", vendor: "nuvoton",
		manufacturer: "id:4E544300", model: "NPCT75x", version: "id:00070002",
		issued: time.Date(2020, 12, 3, 22, 3, 16, 0, time.UTC), chainLen: 2,
	},
	{
		dir: "stmicro-st33ktpm2x-stsafe-ca10-digicert", vendor: "stmicro",
		manufacturer: "id:53544D20", model: "ST33KTPM2X", version: "id:00090101",
		issued: time.Date(2023, 4, 13, 16, 25, 52, 0, time.UTC), chainLen: 3,
	},
}

func tpmEKData(t testing.TB) string {
	t.Helper()
	return filepath.Join(sharedtestdata.Attestation(t), "tpm-ek")
}

// loadRealRoots loads root.pem and the non-empty intermediates.pem of the
// folders with LoadEKRoots.
func loadRealRoots(t testing.TB, base string, dirs ...string) *EKRoots {
	t.Helper()
	var roots, intermediates []string
	for _, d := range dirs {
		roots = append(roots, filepath.Join(base, d, "root.pem"))
		if fi, err := os.Stat(filepath.Join(base, d, "intermediates.pem")); err != nil {
			t.Fatal(err)
		} else if fi.Size() > 0 {
			intermediates = append(intermediates, filepath.Join(base, d, "intermediates.pem"))
		}
	}
	r, err := LoadEKRoots(roots, intermediates)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readRealEK(t testing.TB, base, dir string) []byte {
	t.Helper()
	der, err := os.ReadFile(filepath.Join(base, dir, "ek.der"))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestRealEKTableCoversEveryFolder fails when a folder is added to the
// shared data without a row in realEKs.
func TestRealEKTableCoversEveryFolder(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(tpmEKData(t))
	if err != nil {
		t.Fatal(err)
	}
	var dirs, rows []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	for _, c := range realEKs {
		rows = append(rows, c.dir)
	}
	slices.Sort(rows)
	if !slices.Equal(dirs, rows) {
		t.Fatalf("folders %v, table rows %v", dirs, rows)
	}
}

// TestVerifyRealEK parses every real EK certificate, reads its TPM
// attributes, shows that Go alone refuses it (the critical SAN), and
// verifies it with its own manufacturer's root and intermediates at the
// pinned times; before the chain is valid it is refused.
func TestVerifyRealEK(t *testing.T) {
	t.Parallel()
	base := tpmEKData(t)
	for _, c := range realEKs {
		t.Run(c.dir, func(t *testing.T) {
			t.Parallel()
			der := readRealEK(t, base, c.dir)
			if p := sharedtestdata.Certificates(t, filepath.Join(base, c.dir, "ek.pem")); len(p) != 1 || !bytes.Equal(p[0].Raw, der) {
				t.Fatal("ek.pem and ek.der differ")
			}
			ek, err := ParseEKCertificate(der)
			checkErr(t, err, nil)
			t.Logf("manufacturer=%q model=%q version=%q key=%T", ek.Manufacturer, ek.Model, ek.Version, ek.Cert.PublicKey)
			if ek.Manufacturer != c.manufacturer || ek.Model != c.model || ek.Version != c.version {
				t.Errorf("attributes = %q %q %q, want %q %q %q", ek.Manufacturer, ek.Model, ek.Version, c.manufacturer, c.model, c.version)
			}
			if len(ek.Cert.UnhandledCriticalExtensions) != 0 {
				t.Errorf("UnhandledCriticalExtensions = %v, want none", ek.Cert.UnhandledCriticalExtensions)
			}
			if _, isEC := ek.Cert.PublicKey.(*ecdsa.PublicKey); isEC != c.ekIsECDSA {
				t.Errorf("EK key %T", ek.Cert.PublicKey)
			}

			roots := loadRealRoots(t, base, c.dir)
			root := sharedtestdata.Certificates(t, filepath.Join(base, c.dir, "root.pem"))[0]
			for _, cert := range append(sharedtestdata.Certificates(t, filepath.Join(base, c.dir, "intermediates.pem")), root, ek.Cert) {
				if c.issued.Before(cert.NotBefore) || c.issued.After(cert.NotAfter) || later.After(cert.NotAfter) {
					t.Fatalf("pin %v or %v outside %v's validity [%v, %v]", c.issued, later, cert.Subject, cert.NotBefore, cert.NotAfter)
				}
			}
			plainGo(t, der, roots, c)

			for _, at := range []time.Time{c.issued, later} {
				chain, err := roots.Verify(ek, nil, at)
				checkErr(t, err, nil)
				if len(chain) != c.chainLen || chain[0] != ek.Cert || !chain[len(chain)-1].Equal(root) {
					t.Fatalf("at %v: chain of %d ending %v", at, len(chain), chain[len(chain)-1].Subject)
				}
			}

			// Before the EK's notBefore, and (CA 020) before its CA's.
			for _, at := range []time.Time{ek.Cert.NotBefore.Add(-time.Second), c.tooEarly} {
				if at.IsZero() {
					continue
				}
				_, err := roots.Verify(ek, nil, at)
				checkErr(t, err, ErrEKUntrusted)
				var invalid x509.CertificateInvalidError
				if !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
					t.Fatalf("at %v: err = %v, want an x509 Expired", at, err)
				}
			}

			// Its intermediates sent by the client instead of configured.
			if c.chainLen == 3 {
				bare := NewEKRoots([]*x509.Certificate{root}, nil)
				_, err := bare.Verify(ek, nil, c.issued)
				checkErr(t, err, ErrEKUntrusted)
				sent := sharedtestdata.Certificates(t, filepath.Join(base, c.dir, "intermediates.pem"))
				_, err = bare.Verify(ek, sent, c.issued)
				checkErr(t, err, nil)
			}

			if c.wantHash != "" {
				h, err := tpmwire.EKSHA256(ek.Cert.PublicKey)
				checkErr(t, err, nil)
				if h != c.wantHash {
					t.Errorf("EKSHA256 = %s, want %s", h, c.wantHash)
				}
			}
		})
	}
}

// plainGo pins the data quirks: Go's x509 refuses every EK for its
// critical SAN, and, once that is cleared, chains every EK but Intel
// GLK's (issuer name spacing).
func plainGo(t *testing.T, der []byte, roots *EKRoots, c realEK) {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{
		Roots: roots.rootPool, Intermediates: roots.intermediatePool,
		CurrentTime: c.issued, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	if _, err := cert.Verify(opts); !errors.As(err, new(x509.UnhandledCriticalExtension)) {
		t.Fatalf("plain Go: err = %v, want unhandled critical extension", err)
	}
	if len(cert.UnhandledCriticalExtensions) != 1 || !cert.UnhandledCriticalExtensions[0].Equal(oidSubjectAltName) {
		t.Fatalf("plain Go: UnhandledCriticalExtensions = %v", cert.UnhandledCriticalExtensions)
	}
	cert.UnhandledCriticalExtensions = nil
	_, err = cert.Verify(opts)
	if c.spacedIssuer {
		if !errors.As(err, new(x509.UnknownAuthorityError)) {
			t.Fatalf("plain Go, SAN cleared: err = %v, want unknown authority (the spacing quirk)", err)
		}
	} else if err != nil {
		t.Fatalf("plain Go, SAN cleared: %v", err)
	}
}

// TestVerifyRealEKOtherRoots refuses every real EK against the roots and
// intermediates of the other manufacturers, and against the other chains
// of its own manufacturer, at the time its own chain verifies.
func TestVerifyRealEKOtherRoots(t *testing.T) {
	t.Parallel()
	base := tpmEKData(t)
	for _, c := range realEKs {
		var otherVendors, sameVendor []string
		for _, o := range realEKs {
			switch {
			case o.vendor != c.vendor:
				otherVendors = append(otherVendors, o.dir)
			case o.dir != c.dir:
				sameVendor = append(sameVendor, o.dir)
			}
		}
		cases := map[string][]string{"other-manufacturers": otherVendors}
		if len(sameVendor) > 0 { // STMicro has one chain in the data
			cases["same-manufacturer-other-chains"] = sameVendor
		}
		for name, dirs := range cases {
			t.Run(c.dir+"/"+name, func(t *testing.T) {
				t.Parallel()
				ek, err := ParseEKCertificate(readRealEK(t, base, c.dir))
				checkErr(t, err, nil)
				roots := loadRealRoots(t, base, dirs...)
				_, err = roots.Verify(ek, nil, c.issued)
				checkErr(t, err, ErrEKUntrusted)
				if !errors.As(err, new(x509.UnknownAuthorityError)) {
					t.Fatalf("err = %v, want unknown authority", err)
				}
			})
		}
	}
}

// TestVerifyTestManufacturerEK checks tpmtest's EK certificates, RSA and
// ECDSA, against their manufacturer's root and against another
// manufacturer with the same root name and another key.
func TestVerifyTestManufacturerEK(t *testing.T) {
	t.Parallel()
	m, other := tpmtest.NewManufacturer(t), tpmtest.NewManufacturer(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]crypto.PublicKey{"rsa-2048": &rsaKey.PublicKey, "ecdsa-p256": &ecKey.PublicKey} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ek, err := ParseEKCertificate(m.EKCertificate(t, pub))
			checkErr(t, err, nil)
			if ek.Manufacturer != tpmtest.ManufacturerID || ek.Model != tpmtest.Model || ek.Version != tpmtest.Version {
				t.Fatalf("attributes = %q %q %q", ek.Manufacturer, ek.Model, ek.Version)
			}
			if !bytes.Equal(ek.Cert.RawSubject, []byte{0x30, 0x00}) {
				t.Fatalf("subject %x, want empty", ek.Cert.RawSubject)
			}
			at := ek.Cert.NotBefore.Add(time.Minute)

			chain, err := NewEKRoots([]*x509.Certificate{m.Root}, nil).Verify(ek, nil, at)
			checkErr(t, err, nil)
			if len(chain) != 2 || chain[0] != ek.Cert || !chain[1].Equal(m.Root) {
				t.Fatalf("chain = %v", chain)
			}
			chain, err = NewEKRoots([]*x509.Certificate{other.Root, m.Root}, nil).Verify(ek, nil, at)
			checkErr(t, err, nil)
			if !chain[1].Equal(m.Root) {
				t.Fatal("chained to the other manufacturer")
			}

			_, err = NewEKRoots([]*x509.Certificate{other.Root}, nil).Verify(ek, nil, at)
			checkErr(t, err, ErrEKUntrusted)
			if !errors.As(err, new(x509.UnknownAuthorityError)) {
				t.Fatalf("err = %v, want unknown authority", err)
			}
			// A CA that is not a root, sent by the client, is no anchor.
			_, err = NewEKRoots([]*x509.Certificate{other.Root}, nil).Verify(ek, []*x509.Certificate{m.Root}, at)
			checkErr(t, err, ErrEKUntrusted)

			h, err := tpmwire.EKSHA256(pub)
			checkErr(t, err, nil)
			want := sha256.Sum256(ek.Cert.RawSubjectPublicKeyInfo)
			if h != hex.EncodeToString(want[:]) {
				t.Fatalf("EKSHA256 = %s, want sha256 of the certificate's SPKI", h)
			}
		})
	}
}

// TestVerifyUnhandledCriticalExtension: a critical extension other than
// the TPM SAN still fails verification; the same certificate without it
// verifies.
func TestVerifyUnhandledCriticalExtension(t *testing.T) {
	t.Parallel()
	m := tpmtest.NewManufacturer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	roots := NewEKRoots([]*x509.Certificate{m.Root}, nil)
	unknownOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}
	for _, tc := range []struct {
		name     string
		critical bool
		want     error
	}{
		{"ok/unknown-non-critical-extension", false, nil},
		{"fail/unknown-critical-extension", true, ErrEKUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := m.EKTemplate(t)
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: unknownOID, Critical: tc.critical, Value: []byte{0x05, 0x00}})
			ek, err := ParseEKCertificate(m.Issue(t, tmpl, &key.PublicKey))
			checkErr(t, err, nil)
			if ek.Manufacturer != tpmtest.ManufacturerID {
				t.Fatalf("manufacturer %q", ek.Manufacturer)
			}
			_, err = roots.Verify(ek, nil, ek.Cert.NotBefore.Add(time.Minute))
			checkErr(t, err, tc.want)
			if tc.want != nil {
				if !errors.As(err, new(x509.UnhandledCriticalExtension)) {
					t.Fatalf("err = %v, want unhandled critical extension", err)
				}
				if !slices.ContainsFunc(ek.Cert.UnhandledCriticalExtensions, unknownOID.Equal) {
					t.Fatalf("UnhandledCriticalExtensions = %v", ek.Cert.UnhandledCriticalExtensions)
				}
			}
		})
	}
}

// sanExtension builds a critical subjectAltName from GeneralName
// builders (dirName, rawName).
func sanExtension(names ...func(*cryptobyte.Builder)) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, n := range names {
			n(b)
		}
	})
	return pkix.Extension{Id: oidSubjectAltName, Critical: true, Value: b.BytesOrPanic()}
}

var directoryNameTag = cbasn1.Tag(4).ContextSpecific().Constructed()

// atv is an AttributeTypeAndValue for dirName.
type atv struct {
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value []byte
}

// dirName is a directoryName of one RDN per attribute.
func dirName(atvs ...atv) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(directoryNameTag, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, a := range atvs {
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(a.oid)
							b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes(a.value) })
						})
					})
				}
			})
		})
	}
}

// rawName is a GeneralName of the given tag and raw content.
func rawName(tag cbasn1.Tag, content []byte) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(content) })
	}
}

// TestParseEKCertificateSubjectAltName issues EK certificates with
// unusual SANs and checks what is read, what is malformed, and when the
// SAN stays an unhandled critical extension.
func TestParseEKCertificateSubjectAltName(t *testing.T) {
	t.Parallel()
	m := tpmtest.NewManufacturer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	roots := NewEKRoots([]*x509.Certificate{m.Root}, nil)
	manu := atv{oidTPMManufacturer, cbasn1.UTF8String, []byte("id:574B4341")}
	otherName := rawName(cbasn1.Tag(0).ContextSpecific().Constructed(), []byte{0x06, 0x03, 0x2a, 0x03, 0x04, 0xa0, 0x03, 0x0c, 0x01, 'x'})
	for _, tc := range []struct {
		name          string
		san           pkix.Extension
		wantParse     error
		manufacturer  string
		wantUnhandled bool // the SAN stays in UnhandledCriticalExtensions
	}{
		{name: "ok/tcg-attributes-ia5string", san: sanExtension(dirName(atv{oidTPMManufacturer, cbasn1.IA5String, []byte("id:574B4341")})), manufacturer: "id:574B4341"},
		{name: "ok/directory-name-without-tcg-attributes", san: sanExtension(dirName(atv{asn1.ObjectIdentifier{2, 5, 4, 3}, cbasn1.UTF8String, []byte("x")}))},
		{name: "ok/two-directory-names", san: sanExtension(dirName(manu), dirName(atv{oidTPMModel, cbasn1.UTF8String, []byte("m")})), manufacturer: "id:574B4341"},
		{name: "ok/other-name-too-stays-unhandled", san: sanExtension(dirName(manu), otherName), manufacturer: "id:574B4341", wantUnhandled: true},
		{name: "fail/directory-name-garbage", san: sanExtension(rawName(directoryNameTag, []byte{0x30, 0x03, 0x31, 0x01, 0xff})), wantParse: ErrEKMalformed},
		{name: "fail/directory-name-trailing-bytes", san: sanExtension(rawName(directoryNameTag, []byte{0x30, 0x00, 0x05, 0x00})), wantParse: ErrEKMalformed},
		{name: "fail/empty-rdn", san: sanExtension(rawName(directoryNameTag, []byte{0x30, 0x02, 0x31, 0x00})), wantParse: ErrEKMalformed},
		{name: "fail/manufacturer-is-integer", san: sanExtension(dirName(atv{oidTPMManufacturer, cbasn1.INTEGER, []byte{0x01}})), wantParse: ErrEKMalformed},
		{name: "fail/manufacturer-twice", san: sanExtension(dirName(manu, atv{oidTPMManufacturer, cbasn1.UTF8String, []byte("id:00000000")})), wantParse: ErrEKMalformed},
		{name: "fail/model-control-character", san: sanExtension(dirName(atv{oidTPMModel, cbasn1.UTF8String, []byte("a\nb")})), wantParse: ErrEKMalformed},
		{name: "fail/model-invalid-utf8", san: sanExtension(dirName(atv{oidTPMModel, cbasn1.UTF8String, []byte{0xff, 0xfe}})), wantParse: ErrEKMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := m.EKTemplate(t)
			tmpl.ExtraExtensions = []pkix.Extension{tc.san}
			der := m.Issue(t, tmpl, &key.PublicKey)
			if _, err := x509.ParseCertificate(der); err != nil {
				t.Fatalf("Go refuses the test certificate itself: %v", err)
			}
			ek, err := ParseEKCertificate(der)
			checkErr(t, err, tc.wantParse)
			if tc.wantParse != nil {
				return
			}
			if ek.Manufacturer != tc.manufacturer {
				t.Fatalf("manufacturer %q, want %q", ek.Manufacturer, tc.manufacturer)
			}
			if got := slices.ContainsFunc(ek.Cert.UnhandledCriticalExtensions, oidSubjectAltName.Equal); got != tc.wantUnhandled {
				t.Fatalf("SAN unhandled = %v", got)
			}
			_, err = roots.Verify(ek, nil, ek.Cert.NotBefore.Add(time.Minute))
			if tc.wantUnhandled {
				checkErr(t, err, ErrEKUntrusted)
				if !errors.As(err, new(x509.UnhandledCriticalExtension)) {
					t.Fatalf("err = %v, want unhandled critical extension", err)
				}
			} else {
				checkErr(t, err, nil)
			}
		})
	}
}

// TestParseEKCertificateMalformed refuses what is not a usable EK
// certificate, and accepts a valid one just under the size bound.
func TestParseEKCertificateMalformed(t *testing.T) {
	t.Parallel()
	m := tpmtest.NewManufacturer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := m.EKCertificate(t, &key.PublicKey)
	// padded returns a valid EK certificate of exactly size bytes.
	padded := func(t *testing.T, size int) []byte {
		t.Helper()
		pad := size - len(good)
		for range 20 { // ECDSA signatures vary by a few bytes
			tmpl := m.EKTemplate(t)
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}, Value: make([]byte, pad)})
			der := m.Issue(t, tmpl, &key.PublicKey)
			if len(der) == size {
				return der
			}
			pad += size - len(der)
		}
		t.Fatalf("could not make a %d-byte certificate", size)
		return nil
	}
	edPriv := ed25519.NewKeyFromSeed(make([]byte, 32))
	edTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	edCert, err := x509.CreateCertificate(rand.Reader, edTmpl, edTmpl, edPriv.Public(), edPriv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		der  func(*testing.T) []byte
		want error
	}{
		{"ok/valid", func(*testing.T) []byte { return good }, nil},
		{"ok/16-KiB", func(t *testing.T) []byte { return padded(t, 16<<10) }, nil},
		{"fail/16-KiB-plus-one", func(t *testing.T) []byte { return padded(t, 16<<10+1) }, ErrEKMalformed},
		{"fail/empty", func(*testing.T) []byte { return nil }, ErrEKMalformed},
		{"fail/garbage", func(*testing.T) []byte { return []byte("not a certificate") }, ErrEKMalformed},
		{"fail/truncated", func(*testing.T) []byte { return good[:len(good)-1] }, ErrEKMalformed},
		{"fail/trailing-byte", func(*testing.T) []byte { return append(slices.Clone(good), 0) }, ErrEKMalformed},
		{"fail/pem-not-der", func(*testing.T) []byte { return m.RootPEM() }, ErrEKMalformed},
		{"fail/ed25519-key", func(*testing.T) []byte { return edCert }, ErrEKMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ek, err := ParseEKCertificate(tc.der(t))
			checkErr(t, err, tc.want)
			if tc.want == nil && ek.Manufacturer != tpmtest.ManufacturerID {
				t.Fatalf("manufacturer %q", ek.Manufacturer)
			}
		})
	}
}

// TestParseEKCertificateNoPanic flips every byte and cuts at every length
// of a real EK certificate and of a tpmtest one; on whatever parses,
// Verify and tpmwire.EKSHA256 run too. Nothing may panic.
func TestParseEKCertificateNoPanic(t *testing.T) {
	t.Parallel()
	m := tpmtest.NewManufacturer(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	samples := [][]byte{m.EKCertificate(t, &key.PublicKey)}
	base := tpmEKData(t)
	samples = append(samples, readRealEK(t, base, "nuvoton-npct6xx-root1110-isecl"), readRealEK(t, base, "intel-ptt-glk-ecc"))
	roots := NewEKRoots([]*x509.Certificate{m.Root}, nil)
	try := func(der []byte) {
		ek, err := ParseEKCertificate(der)
		if err != nil {
			if !errors.Is(err, ErrEKMalformed) {
				t.Fatalf("err = %v, want ErrEKMalformed", err)
			}
			return
		}
		_, _ = roots.Verify(ek, nil, time.Unix(1.9e9, 0))
		_, _ = tpmwire.EKSHA256(ek.Cert.PublicKey)
	}
	for _, s := range samples {
		for i := range s {
			try(s[:i])
			for _, x := range []byte{0x01, 0x80, 0xff} {
				mut := slices.Clone(s)
				mut[i] ^= x
				try(mut)
			}
		}
	}
}

// TestVerifyArguments: nil, zero and oversized arguments are errors.
func TestVerifyArguments(t *testing.T) {
	t.Parallel()
	m := tpmtest.NewManufacturer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ParseEKCertificate(m.EKCertificate(t, &key.PublicKey))
	checkErr(t, err, nil)
	at := ek.Cert.NotBefore.Add(time.Minute)
	roots := NewEKRoots([]*x509.Certificate{m.Root, nil, m.Root}, []*x509.Certificate{nil})
	if roots.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (nil and repeated skipped)", roots.Len())
	}
	var nilRoots *EKRoots
	for _, tc := range []struct {
		name  string
		roots *EKRoots
		ek    *EKCertificate
		extra []*x509.Certificate
		at    time.Time
		want  error
	}{
		{"ok/control", roots, ek, nil, at, nil},
		{"ok/eight-extra-intermediates", roots, ek, slices.Repeat([]*x509.Certificate{m.Root}, 8), at, nil},
		{"fail/nine-extra-intermediates", roots, ek, slices.Repeat([]*x509.Certificate{m.Root}, 9), at, ErrEKUntrusted},
		{"fail/nil-ek", roots, nil, nil, at, ErrEKMalformed},
		{"fail/ek-without-cert", roots, &EKCertificate{}, nil, at, ErrEKMalformed},
		{"fail/zero-time", roots, ek, nil, time.Time{}, errtest.Any},
		{"fail/nil-roots", nilRoots, ek, nil, at, ErrEKUntrusted},
		{"fail/no-roots", NewEKRoots(nil, []*x509.Certificate{m.Root}), ek, nil, at, ErrEKUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := tc.roots.Verify(tc.ek, tc.extra, tc.at)
			checkErr(t, err, tc.want)
		})
	}
}

// TestEKSHA256: known answers come from openssl in TestVerifyRealEK;
// here, keys that are not RSA or ECDSA, or are empty or off the curve,
// are errors and do not panic.
func TestEKSHA256(t *testing.T) {
	t.Parallel()
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		ok   bool
	}{
		{"ok/ecdsa-p256", &ecKey.PublicKey, true},
		{"fail/nil", nil, false},
		{"fail/ed25519", edPub, false},
		{"fail/ecdsa-value-not-pointer", ecKey.PublicKey, false},
		{"fail/nil-rsa-pointer", (*rsa.PublicKey)(nil), false},
		{"fail/empty-rsa", &rsa.PublicKey{}, false},
		{"fail/negative-rsa-modulus", &rsa.PublicKey{N: big.NewInt(-7), E: 65537}, false},
		{"fail/nil-ecdsa-pointer", (*ecdsa.PublicKey)(nil), false},
		{"fail/empty-ecdsa", &ecdsa.PublicKey{}, false},
		{"fail/ecdsa-off-curve", offCurve, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := tpmwire.EKSHA256(tc.pub)
			if tc.ok {
				checkErr(t, err, nil)
				if len(h) != 64 || strings.ToLower(h) != h {
					t.Fatalf("hash %q", h)
				}
				return
			}
			checkErr(t, err, errtest.Any)
		})
	}
}

// TestLoadEKRoots reads roots from directories and files, and names the
// file in every error.
func TestLoadEKRoots(t *testing.T) {
	t.Parallel()
	m1, m2, m3, m4 := tpmtest.NewManufacturer(t), tpmtest.NewManufacturer(t), tpmtest.NewManufacturer(t), tpmtest.NewManufacturer(t)

	dir := t.TempDir()
	m1.WriteRoot(t, dir)
	m2.WriteRoot(t, dir)
	write(t, filepath.Join(dir, "m3.DER"), m3.Root.Raw)
	write(t, filepath.Join(dir, "README.txt"), []byte("not a certificate"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	m4.WriteRoot(t, filepath.Join(dir, "sub")) // not read: not recursive

	bundle := filepath.Join(t.TempDir(), "bundle.crt")
	write(t, bundle, slices.Concat(
		[]byte("operator notes\n"),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}),
		m1.RootPEM(), m2.RootPEM()))

	other := t.TempDir()
	notCert := filepath.Join(other, "notes.pem")
	write(t, notCert, []byte("-----BEGIN NOTHING-----\nAA==\n-----END NOTHING-----\n"))
	empty := filepath.Join(other, "empty.pem")
	write(t, empty, nil)
	badBlock := filepath.Join(other, "bad.pem")
	write(t, badBlock, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}))
	badDER := filepath.Join(other, "bad.der")
	write(t, badDER, []byte{0x30, 0x03, 0x02, 0x01})
	missing := filepath.Join(other, "missing.pem")
	emptyDir := t.TempDir()
	write(t, filepath.Join(emptyDir, "notes.txt"), []byte("x"))

	for _, tc := range []struct {
		name          string
		roots, inters []string
		wantLen       int
		trusts        []*tpmtest.Manufacturer
		distrusts     []*tpmtest.Manufacturer
		wantErr       string // in the error message; "" for success
		wantNotExist  bool
	}{
		{name: "ok/directory", roots: []string{dir}, wantLen: 3, trusts: []*tpmtest.Manufacturer{m1, m2, m3}, distrusts: []*tpmtest.Manufacturer{m4}},
		{name: "ok/pem-bundle-file", roots: []string{bundle}, wantLen: 2, trusts: []*tpmtest.Manufacturer{m1, m2}, distrusts: []*tpmtest.Manufacturer{m3}},
		{name: "ok/der-file-and-directory-overlap", roots: []string{filepath.Join(dir, "m3.DER"), dir}, wantLen: 3},
		{name: "ok/intermediates-not-roots", roots: []string{m1.WriteRoot(t, t.TempDir())}, inters: []string{bundle}, wantLen: 1, trusts: []*tpmtest.Manufacturer{m1}, distrusts: []*tpmtest.Manufacturer{m2}},
		{name: "fail/missing-path", roots: []string{missing}, wantErr: missing, wantNotExist: true},
		{name: "fail/missing-intermediates-path", roots: []string{dir}, inters: []string{missing}, wantErr: missing, wantNotExist: true},
		{name: "fail/pem-without-certificate", roots: []string{notCert}, wantErr: notCert + ": no certificate"},
		{name: "fail/empty-file", roots: []string{empty}, wantErr: empty + ": no certificate"},
		{name: "fail/bad-certificate-block", roots: []string{badBlock}, wantErr: badBlock + ": PEM block 1"},
		{name: "fail/bad-der", roots: []string{badDER}, wantErr: badDER},
		{name: "fail/directory-with-a-bad-file", roots: []string{other}, wantErr: filepath.Join(other, "bad.der")},
		{name: "fail/directory-without-certificate-files", roots: []string{emptyDir}, wantErr: emptyDir},
		{name: "fail/no-roots", roots: nil, inters: []string{bundle}, wantErr: "no root certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := LoadEKRoots(tc.roots, tc.inters)
			if tc.wantErr != "" {
				checkErr(t, err, errtest.Any)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to name %q", err, tc.wantErr)
				}
				if tc.wantNotExist != errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err = %v, not-exist = %v", err, !tc.wantNotExist)
				}
				return
			}
			checkErr(t, err, nil)
			if r.Len() != tc.wantLen {
				t.Fatalf("Len = %d, want %d", r.Len(), tc.wantLen)
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range slices.Concat(tc.trusts, tc.distrusts) {
				ek, err := ParseEKCertificate(m.EKCertificate(t, &key.PublicKey))
				checkErr(t, err, nil)
				_, err = r.Verify(ek, nil, ek.Cert.NotBefore.Add(time.Minute))
				if i < len(tc.trusts) {
					checkErr(t, err, nil)
				} else {
					checkErr(t, err, ErrEKUntrusted)
				}
			}
		})
	}

	// The real data: one PEM root per file.
	r, err := LoadEKRoots([]string{filepath.Join(tpmEKData(t), realEKs[0].dir, "root.pem")}, nil)
	checkErr(t, err, nil)
	if r.Len() != 1 {
		t.Fatalf("Len = %d", r.Len())
	}
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// spacedPKI is a synthetic hierarchy for the issuer-name decision
// documented on Verify: a root, and an EK CA whose subject has two spaces
// in its O.
type spacedPKI struct {
	root, ca       *x509.Certificate
	rootKey, caKey *ecdsa.PrivateKey
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var spacedEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSpacedPKI(t testing.TB, rootMaxPathLenZero bool) spacedPKI {
	t.Helper()
	p := spacedPKI{rootKey: newKey(t), caKey: newKey(t)}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Spacing Root"},
		NotBefore: spacedEpoch, NotAfter: spacedEpoch.AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLen: 0, MaxPathLenZero: rootMaxPathLenZero,
	}
	if !rootMaxPathLenZero {
		rootTmpl.MaxPathLen = -1
	}
	p.root = createCert(t, rootTmpl, rootTmpl, &p.rootKey.PublicKey, p.rootKey)
	p.ca = createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"Spacing  Test"}, CommonName: "EK CA"},
		NotBefore: spacedEpoch, NotAfter: spacedEpoch.AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}, p.root, &p.caKey.PublicKey, p.rootKey)
	return p
}

// issueEK issues an EK certificate whose issuer field reads issuer, signed
// by signer (whose certificate supplies the rest).
func issueEK(t testing.TB, issuer pkix.Name, signerCert *x509.Certificate, signer crypto.Signer) *EKCertificate {
	t.Helper()
	rawIssuer, err := asn1.Marshal(issuer.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	parent := *signerCert
	parent.RawSubject = rawIssuer
	parent.PublicKey = signer.Public()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), NotBefore: spacedEpoch.Add(time.Hour), NotAfter: spacedEpoch.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageKeyEncipherment, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{2, 23, 133, 8, 1}}, // tcg-kp-EKCertificate
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{tpmtest.SubjectAltName(tpmtest.ManufacturerID, tpmtest.Model, tpmtest.Version)},
	}
	leaf := createCert(t, tmpl, &parent, &newKey(t).PublicKey, signer)
	ek, err := ParseEKCertificate(leaf.Raw)
	checkErr(t, err, nil)
	return ek
}

// TestVerifySpacedIssuer pins the decision on issuer names that differ
// from the CA's subject only in runs of spaces (Intel GLK): accepted when
// the CA's key signed the EK and the CA chains; refused for any other
// difference or when anything else in the chain fails.
func TestVerifySpacedIssuer(t *testing.T) {
	t.Parallel()
	p := newSpacedPKI(t, false)
	pathLenZero := newSpacedPKI(t, true)
	otherRoot := newSpacedPKI(t, false)
	singleSpace := pkix.Name{Organization: []string{"Spacing Test"}, CommonName: "EK CA"}
	at := spacedEpoch.Add(2 * time.Hour)
	for _, tc := range []struct {
		name   string
		pki    spacedPKI
		issuer pkix.Name
		signer crypto.Signer // default p.caKey
		roots  []*x509.Certificate
		inters []*x509.Certificate
		extra  []*x509.Certificate
		at     time.Time
		want   error
		reason x509.InvalidReason // for x509.CertificateInvalidError; 0: unknown authority
	}{
		{name: "ok/one-space-vs-two", issuer: singleSpace},
		{name: "ok/three-spaces-and-trailing", issuer: pkix.Name{Organization: []string{"Spacing   Test "}, CommonName: "EK CA"}},
		{name: "ok/ca-sent-by-client", issuer: singleSpace, inters: []*x509.Certificate{}, extra: []*x509.Certificate{p.ca}},
		{name: "fail/spaces-removed", issuer: pkix.Name{Organization: []string{"SpacingTest"}, CommonName: "EK CA"}, want: ErrEKUntrusted},
		{name: "fail/letters-differ", issuer: pkix.Name{Organization: []string{"Spacing Tost"}, CommonName: "EK CA"}, want: ErrEKUntrusted},
		{name: "fail/case-differs", issuer: pkix.Name{Organization: []string{"spacing test"}, CommonName: "EK CA"}, want: ErrEKUntrusted},
		{name: "fail/attribute-type-differs", issuer: pkix.Name{OrganizationalUnit: []string{"Spacing Test"}, CommonName: "EK CA"}, want: ErrEKUntrusted},
		{name: "fail/signed-by-another-key", issuer: singleSpace, signer: newKey(t), want: ErrEKUntrusted},
		{name: "fail/ca-does-not-chain-to-a-root", issuer: singleSpace, roots: []*x509.Certificate{otherRoot.root}, want: ErrEKUntrusted},
		{name: "fail/ek-expired", issuer: singleSpace, at: spacedEpoch.AddDate(2, 0, 0), want: ErrEKUntrusted, reason: x509.Expired},
		{name: "fail/root-path-length-zero", pki: pathLenZero, issuer: singleSpace, want: ErrEKUntrusted, reason: x509.TooManyIntermediates},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pki := tc.pki
			if pki.root == nil {
				pki = p
			}
			signer := crypto.Signer(pki.caKey)
			if tc.signer != nil {
				signer = tc.signer
			}
			roots, inters, when := []*x509.Certificate{pki.root}, []*x509.Certificate{pki.ca}, at
			if tc.roots != nil {
				roots = tc.roots
			}
			if tc.inters != nil {
				inters = tc.inters
			}
			if !tc.at.IsZero() {
				when = tc.at
			}
			ek := issueEK(t, tc.issuer, pki.ca, signer)
			if bytes.Equal(ek.Cert.RawIssuer, pki.ca.RawSubject) {
				t.Fatal("test EK's issuer is byte-equal to the CA's subject: nothing to test")
			}
			rawIssuer := slices.Clone(ek.Cert.RawIssuer)
			chain, err := NewEKRoots(roots, inters).Verify(ek, tc.extra, when)
			checkErr(t, err, tc.want)
			if !bytes.Equal(ek.Cert.RawIssuer, rawIssuer) {
				t.Fatal("Verify changed the EK certificate")
			}
			if tc.want == nil {
				if len(chain) != 3 || chain[0] != ek.Cert || !chain[1].Equal(pki.ca) || !chain[2].Equal(pki.root) {
					t.Fatalf("chain = %v", chain)
				}
				return
			}
			var invalid x509.CertificateInvalidError
			switch {
			case tc.reason == 0 && !errors.As(err, new(x509.UnknownAuthorityError)):
				t.Fatalf("err = %v, want unknown authority", err)
			case tc.reason != 0 && (!errors.As(err, &invalid) || invalid.Reason != tc.reason):
				t.Fatalf("err = %v, want x509 reason %d", err, tc.reason)
			}
		})
	}
}
