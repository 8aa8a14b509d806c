package azure

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"
)

// SignerDomain is the DNS name an IMDS signer certificate must hold:
// metadata.azure.com itself or any name below it
// (eastus.metadata.azure.com, *.metadata.azure.com).
const SignerDomain = "metadata.azure.com"

// oidSubjectAltName is id-ce-subjectAltName (RFC 5280 §4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// signerIsMetadata reports whether c is a certificate for SignerDomain.
//
// When the certificate has a subjectAltName extension, only its dNSName
// entries count and the subject CN is ignored, as RFC 6125 §6.4.4 asks
// and Go's crypto/x509 does. The CN is read only when there is no
// subjectAltName extension at all (certificates from before the CA/B
// Forum made SANs mandatory); every IMDS signer seen since 2019 carries
// a SAN with both metadata.azure.com and <region>.metadata.azure.com.
func signerIsMetadata(c *x509.Certificate) bool {
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			for _, name := range c.DNSNames {
				if underSignerDomain(name) {
					return true
				}
			}
			return false
		}
	}
	return underSignerDomain(c.Subject.CommonName)
}

// underSignerDomain matches SignerDomain or a subdomain of it, on a label
// boundary, case-insensitively (DNS names are case-insensitive, RFC 4343).
func underSignerDomain(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return name == SignerDomain || strings.HasSuffix(name, "."+SignerDomain)
}
