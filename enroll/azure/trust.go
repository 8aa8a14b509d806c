package azure

import (
	"crypto/x509"
	"embed"
	"encoding/pem"
	"fmt"
	"io/fs"
	"path"
)

// certs holds the public Microsoft and DigiCert CA certificates that IMDS
// signer certificates chain to; certs/SOURCES.md says where each came from.
//
//go:embed certs/roots/*.pem certs/intermediates/*.pem
var certs embed.FS

// ShippedRoots returns the trust anchors used when Config.Roots is nil:
// Baltimore CyberTrust Root (expired 2025, kept for historic documents),
// DigiCert Global Root G2, Microsoft RSA Root Certificate Authority 2017
// and Microsoft TLS RSA Root G2. Each call returns fresh copies.
func ShippedRoots() []*x509.Certificate {
	return mustLoad("certs/roots")
}

// ShippedIntermediates returns the Microsoft issuing CAs that Verify
// always offers for chain building (the PKCS#7 of an IMDS document
// carries only the signer). Each call returns fresh copies.
func ShippedIntermediates() []*x509.Certificate {
	return mustLoad("certs/intermediates")
}

// mustLoad parses every PEM file in dir, in name order. The files are
// embedded at build time and checked by the tests, so a failure is a
// build defect and panics.
func mustLoad(dir string) []*x509.Certificate {
	entries, err := fs.ReadDir(certs, dir)
	if err != nil {
		panic(fmt.Sprintf("azure: embedded %s: %v", dir, err))
	}
	var out []*x509.Certificate
	for _, e := range entries { // fs.ReadDir sorts by name
		name := e.Name()
		data, err := certs.ReadFile(path.Join(dir, name))
		if err != nil {
			panic(fmt.Sprintf("azure: embedded %s: %v", name, err))
		}
		cs, err := parsePEM(data)
		if err != nil || len(cs) != 1 {
			panic(fmt.Sprintf("azure: embedded %s: want one certificate (%d): %v", name, len(cs), err))
		}
		out = append(out, cs...)
	}
	return out
}

// parsePEM parses every CERTIFICATE block in data; other block types are
// an error.
func parsePEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}
