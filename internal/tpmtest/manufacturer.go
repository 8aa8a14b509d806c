// Package tpmtest plays a TPM manufacturer in tests: a Manufacturer is a
// P-256 root CA made at test time that issues real EK certificates, shaped
// like the ones Infineon, Nuvoton, STMicro and Intel issue (empty subject,
// critical subjectAltName directoryName with the TCG TPM attributes, EKU
// tcg-kp-EKCertificate), for the endorsement key of a TPM simulator:
//
//	m := tpmtest.NewManufacturer(t)
//	der := m.EKCertificate(t, ekPublicKey) // *rsa.PublicKey or *ecdsa.PublicKey
//	roots := tpmattest.NewEKRoots([]*x509.Certificate{m.Root}, nil)
//	ek, _ := tpmattest.ParseEKCertificate(der)
//	chain, err := roots.Verify(ek, nil, time.Now())
//
// or, for configuration read from disk, m.WriteRoot(t, dir). To make an
// unusual EK certificate, change m.EKTemplate(t) and sign it with m.Issue.
//
// Every Manufacturer has the same root subject and its own key, so one
// Manufacturer's EK certificates never verify against another's root.
package tpmtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The TPM attributes EKCertificate writes into the subjectAltName.
const (
	// ManufacturerID is tcg-at-tpmManufacturer: "id:" and the TCG vendor
	// ID in hex, here the ASCII of "WKCA" (a made-up vendor).
	ManufacturerID = "id:574B4341"
	// Model is tcg-at-tpmModel.
	Model = "workerca test TPM"
	// Version is tcg-at-tpmVersion (firmware 1.2).
	Version = "id:00010002"
)

// rootSubject is the subject of every Manufacturer's root.
var rootSubject = pkix.Name{
	Country:      []string{"US"},
	Organization: []string{"workerca test TPM manufacturer"},
	CommonName:   "workerca test TPM EK root",
}

// OIDs of the TCG EK Credential Profile for TPM Family 2.0.
var (
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTPMModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTPMVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	// tcg-kp-EKCertificate, the EKU of EK certificates.
	oidEKCertificate = asn1.ObjectIdentifier{2, 23, 133, 8, 1}
)

// Manufacturer is a test TPM manufacturer CA made at test time (P-256
// root, valid from ValidFrom to ValidUntil).
type Manufacturer struct {
	// Root is the manufacturer's self-signed root certificate.
	Root *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewManufacturer makes a manufacturer with a fresh P-256 root key.
func NewManufacturer(t testing.TB) *Manufacturer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tpmtest: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               rootSubject,
		NotBefore:             ValidFrom,
		NotAfter:              ValidUntil,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("tpmtest: root: %v", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tpmtest: root: %v", err)
	}
	return &Manufacturer{Root: root, key: key}
}

// EKCertificate issues a realistic EK certificate for pub (RSA or ECDSA):
// empty subject; critical subjectAltName directoryName with
// ManufacturerID, Model and Version; EKU 2.23.133.8.1; critical KeyUsage
// keyEncipherment; CA:FALSE; valid from ValidFrom to ValidUntil. It
// returns the DER.
func (m *Manufacturer) EKCertificate(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	return m.Issue(t, m.EKTemplate(t), pub)
}

// EKTemplate returns the template EKCertificate signs, with a fresh
// serial, for a test to change before Issue.
func (m *Manufacturer) EKTemplate(t testing.TB) *x509.Certificate {
	t.Helper()
	return &x509.Certificate{
		SerialNumber:          serial(t),
		NotBefore:             ValidFrom,
		NotAfter:              ValidUntil,
		KeyUsage:              x509.KeyUsageKeyEncipherment,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidEKCertificate},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{SubjectAltName(ManufacturerID, Model, Version)},
	}
}

// Issue signs template for pub (RSA or ECDSA) with the root key and
// returns the DER.
func (m *Manufacturer) Issue(t testing.TB, template *x509.Certificate, pub crypto.PublicKey) []byte {
	t.Helper()
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		t.Fatalf("tpmtest: EK public key %T, want *rsa.PublicKey or *ecdsa.PublicKey", pub)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, m.Root, pub, m.key)
	if err != nil {
		t.Fatalf("tpmtest: EK certificate: %v", err)
	}
	return der
}

// RootPEM returns the root certificate as PEM.
func (m *Manufacturer) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.Root.Raw})
}

// WriteRoot writes the root as PEM into dir, in a file named for its
// serial (so several manufacturers can share dir), with mode 0644, and
// returns the file's path.
func (m *Manufacturer) WriteRoot(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("tpm-manufacturer-%x.pem", m.Root.SerialNumber))
	if err := os.WriteFile(path, m.RootPEM(), 0o644); err != nil {
		t.Fatalf("tpmtest: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatalf("tpmtest: %v", err)
	}
	return path
}

// SubjectAltName returns the critical subjectAltName extension of an EK
// certificate: one directoryName holding tcg-at-tpmManufacturer,
// tcg-at-tpmModel and tcg-at-tpmVersion, one RDN each, as UTF8Strings
// (TCG EK Credential Profile for TPM Family 2.0, §3.2.9). An empty value
// leaves its attribute out.
func SubjectAltName(manufacturer, model, version string) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(names *cryptobyte.Builder) { // GeneralNames
		names.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(dn *cryptobyte.Builder) { // directoryName
			dn.AddASN1(cbasn1.SEQUENCE, func(rdns *cryptobyte.Builder) { // RDNSequence
				for _, a := range []struct {
					oid   asn1.ObjectIdentifier
					value string
				}{
					{oidTPMManufacturer, manufacturer},
					{oidTPMModel, model},
					{oidTPMVersion, version},
				} {
					if a.value == "" {
						continue
					}
					rdns.AddASN1(cbasn1.SET, func(rdn *cryptobyte.Builder) {
						rdn.AddASN1(cbasn1.SEQUENCE, func(atv *cryptobyte.Builder) {
							atv.AddASN1ObjectIdentifier(a.oid)
							atv.AddASN1(cbasn1.UTF8String, func(v *cryptobyte.Builder) {
								v.AddBytes([]byte(a.value))
							})
						})
					})
				}
			})
		})
	})
	return pkix.Extension{Id: oidSubjectAltName, Critical: true, Value: b.BytesOrPanic()}
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("tpmtest: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

// WriteEKCertificate writes an EKCertificate for pub as DER into a new
// file in dir, as platforms that ship it as a file do, and returns its
// path.
func (m *Manufacturer) WriteEKCertificate(t testing.TB, dir string, pub crypto.PublicKey) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "ek-*.der")
	if err != nil {
		t.Fatalf("tpmtest: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(m.EKCertificate(t, pub)); err != nil {
		t.Fatalf("tpmtest: %v", err)
	}
	return f.Name()
}
