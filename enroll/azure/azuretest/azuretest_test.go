package azuretest_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/workerca/workerca/enroll/azure/azuretest"
)

// TestPKCS7_shapedLikeAzure checks the claims of the package doc: one
// signer, only the signer certificate (unless WithIssuingInPKCS7), no
// signed attributes, sha256WithRSAEncryption in the digest field and
// rsaEncryption as the signature algorithm, content = Azure-formatted JSON.
func TestPKCS7_shapedLikeAzure(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	c := azuretest.Content{Nonce: "n", VMID: "vm", SubscriptionID: "sub", CreatedOn: created}
	tests := []struct {
		name      string
		opts      []azuretest.Option
		wantCerts int
	}{
		{name: "ok/signer-only", wantCerts: 1},
		{name: "ok/issuing-ca-carried", opts: []azuretest.Option{azuretest.WithIssuingInPKCS7()}, wantCerts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := azuretest.NewAuthority(t, tt.opts...)
			p7, err := pkcs7.Parse(a.PKCS7(t, c.JSON(t)))
			if err != nil {
				t.Fatal(err)
			}
			if len(p7.Signers) != 1 || len(p7.Certificates) != tt.wantCerts {
				t.Fatalf("%d signers, %d certificates", len(p7.Signers), len(p7.Certificates))
			}
			si := p7.Signers[0]
			if !si.DigestAlgorithm.Algorithm.Equal(pkcs7.OIDEncryptionAlgorithmRSASHA256) {
				t.Errorf("digest algorithm %v, want sha256WithRSAEncryption", si.DigestAlgorithm.Algorithm)
			}
			if !si.DigestEncryptionAlgorithm.Algorithm.Equal(pkcs7.OIDEncryptionAlgorithmRSA) {
				t.Errorf("signature algorithm %v, want rsaEncryption", si.DigestEncryptionAlgorithm.Algorithm)
			}
			if len(si.AuthenticatedAttributes) != 0 {
				t.Error("signed attributes present")
			}
			if !bytes.Equal(p7.GetOnlySigner().Raw, a.Signer().Raw) {
				t.Error("signer certificate is not Authority.Signer()")
			}
			var doc map[string]any
			if err := json.Unmarshal(p7.Content, &doc); err != nil {
				t.Fatal(err)
			}
			ts, _ := doc["timeStamp"].(map[string]any)
			if ts["createdOn"] != "05/01/26 12:00:00 -0000" || ts["expiresOn"] != "05/01/26 18:00:00 -0000" || doc["vmId"] != "vm" {
				t.Errorf("content %s", p7.Content)
			}
		})
	}
}
