package azure

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

func TestSignerIsMetadata(t *testing.T) {
	t.Parallel()
	san := []pkix.Extension{{Id: oidSubjectAltName}}
	tests := []struct {
		name string
		cert x509.Certificate
		want bool
	}{
		{name: "ok/san-metadata-azure-com", cert: x509.Certificate{Extensions: san, DNSNames: []string{"metadata.azure.com"}}, want: true},
		{name: "ok/san-region-subdomain", cert: x509.Certificate{Extensions: san, DNSNames: []string{"eastus.metadata.azure.com"}}, want: true},
		{name: "ok/san-any-case-trailing-dot", cert: x509.Certificate{Extensions: san, DNSNames: []string{"WestEurope.Metadata.Azure.COM."}}, want: true},
		{name: "ok/san-wildcard-below", cert: x509.Certificate{Extensions: san, DNSNames: []string{"*.metadata.azure.com"}}, want: true},
		{name: "ok/san-second-name", cert: x509.Certificate{Extensions: san, DNSNames: []string{"example.com", "metadata.azure.com"}}, want: true},
		{name: "ok/no-san-cn-fallback", cert: x509.Certificate{Subject: pkix.Name{CommonName: "metadata.azure.com"}}, want: true},
		{name: "fail/san-other-name", cert: x509.Certificate{Extensions: san, DNSNames: []string{"management.azure.com"}}},
		{name: "fail/san-lookalike", cert: x509.Certificate{Extensions: san, DNSNames: []string{"evilmetadata.azure.com"}}},
		{name: "fail/san-as-prefix", cert: x509.Certificate{Extensions: san, DNSNames: []string{"metadata.azure.com.example.net"}}},
		{name: "fail/san-government-cloud", cert: x509.Certificate{Extensions: san, DNSNames: []string{"metadata.azure.us"}}},
		{name: "fail/cn-ignored-when-san-present", cert: x509.Certificate{Extensions: san, DNSNames: []string{"management.azure.com"}, Subject: pkix.Name{CommonName: "metadata.azure.com"}}},
		{name: "fail/cn-ignored-when-san-has-no-dns-name", cert: x509.Certificate{Extensions: san, Subject: pkix.Name{CommonName: "metadata.azure.com"}}},
		{name: "fail/no-san-other-cn", cert: x509.Certificate{Subject: pkix.Name{CommonName: "management.azure.com"}}},
		{name: "fail/nothing", cert: x509.Certificate{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := signerIsMetadata(&tt.cert); got != tt.want {
				t.Errorf("signerIsMetadata = %v, want %v", got, tt.want)
			}
		})
	}
}
