package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"reflect"
	"testing"
)

// TestRenderDefault: the built-in rendering of DefaultTemplate gives
// exactly what executing the template and decoding its JSON gives.
func TestRenderDefault(t *testing.T) {
	t.Parallel()
	p, err := NewProfile(ProfileConfig{Name: "pool-a"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.builtin {
		t.Fatal("the default profile does not use the built-in rendering")
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  any
		id   Identity
	}{
		{"p256", ecKey, Identity{Pool: "pool-a", WorkerID: "w-1", Method: "token", EnrollmentID: "e1", TrustDomain: "example.org"}},
		{"ed25519/odd-worker-id", edKey, Identity{Pool: "pool-a", WorkerID: "i-0a1b.c_d-9", Method: "aws-iid", TrustDomain: "workers.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			sid, err := tc.id.SPIFFEID()
			if err != nil {
				t.Fatal(err)
			}
			want, err := p.execute(csr, tc.id, sid.String())
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.render(csr, tc.id, sid.String())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("built-in rendering\n%+v\ntemplate\n%+v", got, want)
			}
		})
	}
	custom, err := NewProfile(ProfileConfig{Name: "pool-b", Template: DefaultTemplate + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	if custom.builtin {
		t.Error("a pool's own template is rendered as the default")
	}
}
