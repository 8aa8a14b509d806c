package awsiid

import (
	"crypto/dsa" // deprecated, but AWS signs /pkcs7 with DSA-SHA1
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"fmt"
	"path"
	"sort"
	"strings"
)

// The forms in which AWS signs an instance identity document, named for
// the IMDS path under /latest/dynamic/instance-identity/.
const (
	// FormSignature is /signature: base64 RSA PKCS#1 v1.5 over SHA-256
	// of the document bytes, with the region's "RSA" certificate.
	FormSignature = "signature"
	// FormRSA2048 is /rsa2048: a PKCS#7 SignedData holding the document,
	// signed with the region's "RSA-2048" certificate.
	FormRSA2048 = "rsa2048"
	// FormPKCS7DSA is /pkcs7: a PKCS#7 SignedData holding the document,
	// signed with DSA-SHA1 by AWS's one "DSA" certificate.
	FormPKCS7DSA = "pkcs7-dsa"
)

// Certificate is an AWS signing certificate and what it may vouch for.
type Certificate struct {
	// Region is the only region whose documents Cert verifies; "" means
	// every region.
	Region string
	// Form is the only form (FormSignature, FormRSA2048, FormPKCS7DSA)
	// Cert verifies; "" means every form.
	Form string
	// Cert holds the public key. Only the key is used: validity dates,
	// extensions and the certificate's own signature are not checked.
	Cert *x509.Certificate
}

// applies reports whether c may verify a document of region in form.
func (c Certificate) applies(region, form string) bool {
	return (c.Region == "" || c.Region == region) && (c.Form == "" || c.Form == form)
}

//go:embed certs/*/*.pem
var shippedFS embed.FS

// shippedForms maps the directories under certs/ to forms.
var shippedForms = map[string]string{
	"signature": FormSignature,
	"rsa2048":   FormRSA2048,
	"pkcs7-dsa": FormPKCS7DSA,
}

// Shipped returns the AWS certificates embedded in the binary: for each
// region its FormSignature ("RSA") and FormRSA2048 ("RSA-2048")
// certificate, and AWS's DSA certificate for FormPKCS7DSA in every region
// (Region ""). Their origin is recorded in certs/SOURCES.md. Each call
// returns freshly parsed values, sorted by form then region.
//
// The embedded files are checked by this package's tests; Shipped panics
// if one does not parse, which only a broken build can cause.
func Shipped() []Certificate {
	var out []Certificate
	dirs, err := shippedFS.ReadDir("certs")
	if err != nil {
		panic("awsiid: embedded certificates: " + err.Error())
	}
	for _, dir := range dirs {
		form, ok := shippedForms[dir.Name()]
		if !ok {
			panic("awsiid: embedded certificates: unknown form directory " + dir.Name())
		}
		files, err := shippedFS.ReadDir(path.Join("certs", dir.Name()))
		if err != nil {
			panic("awsiid: embedded certificates: " + err.Error())
		}
		for _, f := range files {
			name := path.Join("certs", dir.Name(), f.Name())
			b, err := shippedFS.ReadFile(name)
			if err != nil {
				panic("awsiid: embedded certificates: " + err.Error())
			}
			cert, err := parsePEMCertificate(b)
			if err != nil {
				panic(fmt.Sprintf("awsiid: embedded certificate %s: %v", name, err))
			}
			region := strings.TrimSuffix(f.Name(), ".pem")
			if region == "global" {
				region = ""
			}
			out = append(out, Certificate{Region: region, Form: form, Cert: cert})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Form != out[j].Form {
			return out[i].Form < out[j].Form
		}
		return out[i].Region < out[j].Region
	})
	return out
}

// parsePEMCertificate parses exactly one PEM CERTIFICATE block.
func parsePEMCertificate(b []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM CERTIFICATE block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("data after the certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// checkKey reports whether cert holds a key this package can verify with.
func checkKey(cert *x509.Certificate) error {
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey, *dsa.PublicKey:
		return nil
	default:
		return fmt.Errorf("unsupported public key %T (want RSA or DSA)", cert.PublicKey)
	}
}
