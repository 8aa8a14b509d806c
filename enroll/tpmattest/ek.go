package tpmattest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Sentinel errors of the EK certificate check, wrapped with the detail.
var (
	// ErrEKMalformed means the EK certificate could not be parsed: bad
	// DER, too large, an unreadable TPM subjectAltName, or a public key
	// that is neither RSA nor ECDSA.
	ErrEKMalformed = errors.New("tpm: EK certificate malformed")
	// ErrEKUntrusted means the EK certificate did not verify: no chain
	// to a configured TPM manufacturer root at the given time, or a
	// critical extension nobody handled.
	ErrEKUntrusted = errors.New("tpm: EK certificate does not chain to a configured TPM manufacturer root")
)

const (
	// maxEKCertificateSize bounds the DER of an EK certificate. Real EK
	// certificates are 0.8 to 1.5 KiB.
	maxEKCertificateSize = 16 << 10
	// maxExtraIntermediates bounds the intermediates a client may send
	// with its EK certificate (real manufacturer chains have at most two).
	maxExtraIntermediates = 8
	// maxRootFileSize bounds one file read by LoadEKRoots.
	maxRootFileSize = 8 << 20
)

// TCG EK Credential Profile for TPM Family 2.0, §3.1 (attribute types).
var (
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTPMModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTPMVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
)

// EKCertificate is a parsed TPM endorsement key certificate. Build it with
// ParseEKCertificate, which reads the TPM attributes and marks the TPM
// subjectAltName as handled.
type EKCertificate struct {
	// Cert is the certificate. Its UnhandledCriticalExtensions no longer
	// lists the subjectAltName when ParseEKCertificate read it.
	Cert *x509.Certificate
	// Manufacturer is tcg-at-tpmManufacturer (2.23.133.2.1) from the
	// subjectAltName directoryName, e.g. "id:49465800" (Infineon); empty
	// if absent.
	Manufacturer string
	// Model is tcg-at-tpmModel (2.23.133.2.2), e.g. "SLB 9670 TPM2.0";
	// empty if absent.
	Model string
	// Version is tcg-at-tpmVersion (2.23.133.2.3), e.g. "id:0728"; empty
	// if absent.
	Version string
}

// ParseEKCertificate parses a DER EK certificate of at most 16 KiB with an
// RSA or ECDSA public key.
//
// EK certificates have an empty subject and a critical subjectAltName
// holding only a directoryName with the TPM manufacturer, model and
// version (TCG EK Credential Profile for TPM Family 2.0, §3.2.9). Go's
// crypto/x509 does not understand such a subjectAltName and leaves it in
// UnhandledCriticalExtensions, where it would fail every verification.
// ParseEKCertificate parses it and, when every name in it is a
// directoryName it read, removes exactly 2.5.29.17 from
// UnhandledCriticalExtensions. Any other critical extension stays there,
// and Verify fails on it.
func ParseEKCertificate(der []byte) (*EKCertificate, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrEKMalformed)
	}
	if len(der) > maxEKCertificateSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrEKMalformed, len(der), maxEKCertificateSize)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEKMalformed, err)
	}
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return nil, fmt.Errorf("%w: public key algorithm %v, want RSA or ECDSA", ErrEKMalformed, cert.PublicKeyAlgorithm)
	}
	ek := &EKCertificate{Cert: cert}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		attrs, onlyDirectoryNames, err := parseTPMSubjectAltName(ext.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: subjectAltName: %w", ErrEKMalformed, err)
		}
		ek.Manufacturer = attrs[oidTPMManufacturer.String()]
		ek.Model = attrs[oidTPMModel.String()]
		ek.Version = attrs[oidTPMVersion.String()]
		if onlyDirectoryNames {
			cert.UnhandledCriticalExtensions = slices.DeleteFunc(
				slices.Clone(cert.UnhandledCriticalExtensions),
				func(oid asn1.ObjectIdentifier) bool { return oid.Equal(oidSubjectAltName) })
		}
	}
	return ek, nil
}

// parseTPMSubjectAltName reads a GeneralNames (RFC 5280 §4.2.1.6) and
// returns the TCG attributes of its directoryNames by OID string, and
// whether every name in it is a directoryName.
func parseTPMSubjectAltName(der []byte) (map[string]string, bool, error) {
	in := cryptobyte.String(der)
	var names cryptobyte.String
	if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, false, errors.New("not a GeneralNames sequence")
	}
	if names.Empty() {
		return nil, false, errors.New("no names")
	}
	attrs := map[string]string{}
	onlyDirectoryNames := true
	directoryName := cbasn1.Tag(4).ContextSpecific().Constructed()
	for !names.Empty() {
		var name cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&name, &tag) {
			return nil, false, errors.New("invalid GeneralName")
		}
		if tag != directoryName {
			onlyDirectoryNames = false
			continue
		}
		// directoryName [4] is EXPLICIT (Name is a CHOICE): the content
		// is a whole Name.
		rdns, err := parseName(name)
		if err != nil {
			return nil, false, fmt.Errorf("directoryName: %w", err)
		}
		for _, rdn := range rdns {
			for _, a := range rdn {
				if !a.oid.Equal(oidTPMManufacturer) && !a.oid.Equal(oidTPMModel) && !a.oid.Equal(oidTPMVersion) {
					continue
				}
				v, err := a.text()
				if err != nil {
					return nil, false, fmt.Errorf("attribute %v: %w", a.oid, err)
				}
				if _, dup := attrs[a.oid.String()]; dup {
					return nil, false, fmt.Errorf("attribute %v appears twice", a.oid)
				}
				attrs[a.oid.String()] = v
			}
		}
	}
	return attrs, onlyDirectoryNames, nil
}

// attribute is one AttributeTypeAndValue of a Name, value undecoded.
type attribute struct {
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value []byte
}

// text decodes a UTF8String, PrintableString or IA5String value of
// printable characters.
func (a attribute) text() (string, error) {
	switch a.tag {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String:
	default:
		return "", fmt.Errorf("value has ASN.1 tag %d, want a string", a.tag)
	}
	if !utf8.Valid(a.value) {
		return "", errors.New("value is not UTF-8")
	}
	s := string(a.value)
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", errors.New("value has a non-printable character")
	}
	return s, nil
}

// parseName reads a DER Name (RFC 5280 §4.1.2.4) into its RDNs.
func parseName(der cryptobyte.String) ([][]attribute, error) {
	var seq cryptobyte.String
	if !der.ReadASN1(&seq, cbasn1.SEQUENCE) || !der.Empty() {
		return nil, errors.New("not a Name sequence")
	}
	var rdns [][]attribute
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) {
			return nil, errors.New("invalid RelativeDistinguishedName")
		}
		var rdn []attribute
		for !set.Empty() {
			var atv, value cryptobyte.String
			var a attribute
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) ||
				!atv.ReadASN1ObjectIdentifier(&a.oid) ||
				!atv.ReadAnyASN1(&value, &a.tag) ||
				!atv.Empty() {
				return nil, errors.New("invalid AttributeTypeAndValue")
			}
			a.value = value
			rdn = append(rdn, a)
		}
		if len(rdn) == 0 {
			return nil, errors.New("empty RelativeDistinguishedName")
		}
		rdns = append(rdns, rdn)
	}
	return rdns, nil
}

// EKRoots are the TPM manufacturer roots, and optional intermediates, an
// operator configured. workerca ships none: an operator chooses which
// manufacturers to trust (e.g. from Microsoft's TrustedTpm.cab).
type EKRoots struct {
	roots            []*x509.Certificate
	intermediates    []*x509.Certificate
	rootPool         *x509.CertPool
	intermediatePool *x509.CertPool
}

// NewEKRoots returns the trust anchors roots and the untrusted
// intermediates (used only to build chains). Nil and repeated
// certificates are skipped.
func NewEKRoots(roots, intermediates []*x509.Certificate) *EKRoots {
	r := &EKRoots{rootPool: x509.NewCertPool(), intermediatePool: x509.NewCertPool()}
	r.roots = dedupe(roots)
	r.intermediates = dedupe(intermediates)
	for _, c := range r.roots {
		r.rootPool.AddCert(c)
	}
	for _, c := range r.intermediates {
		r.intermediatePool.AddCert(c)
	}
	return r
}

func dedupe(certs []*x509.Certificate) []*x509.Certificate {
	seen := map[string]bool{}
	var out []*x509.Certificate
	for _, c := range certs {
		if c == nil || seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		out = append(out, c)
	}
	return out
}

// Len returns the number of distinct roots.
func (r *EKRoots) Len() int {
	if r == nil {
		return 0
	}
	return len(r.roots)
}

// LoadEKRoots reads roots and intermediates from files and directories.
// A file holds PEM (one or many CERTIFICATE blocks; other block types are
// skipped) or one DER certificate, and must hold at least one certificate.
// A directory contributes every *.pem, *.crt, *.cer and *.der file in it
// (any case; not recursive) and must contribute at least one. Errors name
// the file. Having no root at all is an error.
func LoadEKRoots(rootPaths, intermediatePaths []string) (*EKRoots, error) {
	roots, err := loadCertificates(rootPaths)
	if err != nil {
		return nil, fmt.Errorf("tpm: EK roots: %w", err)
	}
	if len(roots) == 0 {
		return nil, errors.New("tpm: EK roots: no root certificate configured")
	}
	intermediates, err := loadCertificates(intermediatePaths)
	if err != nil {
		return nil, fmt.Errorf("tpm: EK intermediates: %w", err)
	}
	return NewEKRoots(roots, intermediates), nil
}

// certificateFileExtensions are the file name extensions LoadEKRoots
// reads from a directory.
var certificateFileExtensions = []string{".pem", ".crt", ".cer", ".der"}

func loadCertificates(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err // *fs.PathError names p
		}
		if !fi.IsDir() {
			certs, err := loadCertificateFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, certs...)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		found := 0
		for _, e := range entries {
			if !slices.Contains(certificateFileExtensions, strings.ToLower(filepath.Ext(e.Name()))) {
				continue
			}
			file := filepath.Join(p, e.Name())
			fi, err := os.Stat(file) // follows symbolic links
			if err != nil {
				return nil, err
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			certs, err := loadCertificateFile(file)
			if err != nil {
				return nil, err
			}
			out = append(out, certs...)
			found += len(certs)
		}
		if found == 0 {
			return nil, fmt.Errorf("%s: no *.pem, *.crt, *.cer or *.der certificate file in the directory", p)
		}
	}
	return out, nil
}

func loadCertificateFile(path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRootFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRootFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxRootFileSize)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return certs, nil
}

// parseCertificates reads PEM CERTIFICATE blocks or, when data is not PEM,
// one DER certificate.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor a DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	rest := data
	for i := 1; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i, err)
		}
		out = append(out, c)
	}
}

// Verify checks that ek chains to one of r's roots at time at, building
// the chain from r's intermediates and extra (intermediates the client
// sent; at most 8). It returns one verified chain, leaf first. The EKU of
// an EK certificate is tcg-kp-EKCertificate (2.23.133.8.1), which Go does
// not know, so any EKU is accepted. ek must come from ParseEKCertificate,
// or its subjectAltName fails as an unhandled critical extension.
//
// Issuer names: Go's crypto/x509 chains a certificate to a parent only
// when the issuer and subject names are byte-equal. Some Intel PTT EK
// certificates (GLK) name their issuer "... GLK_EPID_PROD pid:7" while the
// Intel intermediate's subject is "... GLK_EPID_PROD  pid:7" (two spaces).
// RFC 5280 §7.1 compares names with the LDAP StringPrep profile, whose
// insignificant space handling (RFC 4518 §2.6.1) makes runs of spaces
// compare equal; OpenSSL verifies this chain. We accept it, narrowly:
// only when Go found no chain at all, only for the EK's own issuer (every
// link above it must still match byte for byte), only with a configured or
// sent CA certificate whose subject equals the EK's issuer after
// collapsing runs of U+0020 and trimming them at both ends (same RDNs,
// same attribute types, in the same order, string values; no case
// folding), and only when that CA's key verifies the EK's signature. Go
// then verifies the whole chain as usual — signatures, validity at at,
// CA flags, path length, name constraints, policies, critical extensions —
// on a copy of the EK whose issuer field reads the CA's exact subject.
// The signature, not the name, is what binds an EK to its issuer, so this
// accepts no certificate the manufacturer did not sign.
func (r *EKRoots) Verify(ek *EKCertificate, extra []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if ek == nil || ek.Cert == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrEKMalformed)
	}
	if at.IsZero() {
		return nil, errors.New("tpm: verify EK certificate: no verification time")
	}
	if r.Len() == 0 {
		return nil, fmt.Errorf("%w: no root configured", ErrEKUntrusted)
	}
	if len(extra) > maxExtraIntermediates {
		return nil, fmt.Errorf("%w: %d intermediates sent, at most %d", ErrEKUntrusted, len(extra), maxExtraIntermediates)
	}
	extra = dedupe(extra)
	intermediates := r.intermediatePool
	if len(extra) > 0 {
		intermediates = intermediates.Clone()
		for _, c := range extra {
			intermediates.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         r.rootPool,
		Intermediates: intermediates,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	chains, err := ek.Cert.Verify(opts)
	if err == nil {
		return slices.Clone(chains[0]), nil
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		chain, spacedErr := r.verifySpacedIssuer(ek.Cert, extra, opts)
		if chain != nil {
			return chain, nil
		}
		if spacedErr != nil {
			// A CA whose key signed the EK was found: its error says more.
			err = spacedErr
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrEKUntrusted, err)
}

// verifySpacedIssuer is the issuer-name fallback Verify documents. It
// returns a verified chain with leaf first; or the first verification
// error of a candidate CA that signed leaf; or neither.
func (r *EKRoots) verifySpacedIssuer(leaf *x509.Certificate, extra []*x509.Certificate, opts x509.VerifyOptions) ([]*x509.Certificate, error) {
	issuer, err := parseName(leaf.RawIssuer)
	if err != nil {
		return nil, nil
	}
	var firstErr error
	tried := map[string]bool{}
	for _, ca := range slices.Concat(r.roots, r.intermediates, extra) {
		if bytes.Equal(ca.RawSubject, leaf.RawIssuer) || tried[string(ca.RawSubject)] {
			continue
		}
		subject, err := parseName(ca.RawSubject)
		if err != nil || !sameNameIgnoringSpaceRuns(issuer, subject) {
			continue
		}
		if leaf.CheckSignatureFrom(ca) != nil {
			continue
		}
		tried[string(ca.RawSubject)] = true
		relabeled := *leaf
		relabeled.RawIssuer = ca.RawSubject
		chains, err := relabeled.Verify(opts)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		chain := slices.Clone(chains[0])
		chain[0] = leaf
		return chain, nil
	}
	return nil, firstErr
}

// sameNameIgnoringSpaceRuns reports whether a and b have the same RDNs
// with the same attribute types in the same order, and string values that
// are equal once runs of spaces are collapsed and trimmed.
func sameNameIgnoringSpaceRuns(a, b [][]attribute) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if !x.oid.Equal(y.oid) || !isDirectoryString(x.tag) || !isDirectoryString(y.tag) {
				return false
			}
			if collapseSpaces(x.value) != collapseSpaces(y.value) {
				return false
			}
		}
	}
	return true
}

// isDirectoryString reports the two string types RFC 5280 §7.1 compares
// with LDAP StringPrep.
func isDirectoryString(tag cbasn1.Tag) bool {
	return tag == cbasn1.UTF8String || tag == cbasn1.PrintableString
}

func collapseSpaces(v []byte) string {
	return strings.Join(strings.FieldsFunc(string(v), func(r rune) bool { return r == ' ' }), " ")
}
