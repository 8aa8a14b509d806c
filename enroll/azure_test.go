package enroll_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/azure"
	"github.com/workerca/workerca/enroll/azure/azuretest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

const (
	azureVM  = "6f1c2b9e-4a1d-4d3e-9b7a-2c1e5f0a9d11"
	azureSub = "00000000-1111-2222-3333-444444444444"
)

// azureFixture is a service with an azure attestor trusting a stand-in
// Microsoft hierarchy (real keys, real PKCS#7) and one pool "vms" for
// subscription azureSub.
func azureFixture(t *testing.T, st *store.Store) (*fixture, *azuretest.Authority) {
	t.Helper()
	clk := &clock{now: catest.Epoch}
	ms := azuretest.NewAuthority(t)
	v, err := azure.New(azure.Config{Roots: ms.Roots(), Intermediates: ms.Intermediates(), Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	att, err := enroll.NewAzureAttestor(enroll.AzureConfig{Verifier: v, Pools: []enroll.AzurePool{{Pool: "vms", Subscriptions: []string{azureSub}}}})
	if err != nil {
		t.Fatal(err)
	}
	return attestFixture(t, st, clk, att, pool(t, "vms", 0, enroll.MethodAzure)), ms
}

func azureEvidence(ev azure.Evidence) json.RawMessage {
	b, _ := json.Marshal(ev)
	return b
}

func TestEnrollAzure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f, ms := azureFixture(t, st)
		ctx := context.Background()
		nonce := func(t *testing.T) string {
			ch, err := f.svc.CreateChallenge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ch.Nonce
		}
		doc := func(t *testing.T, n string, c azuretest.Content) json.RawMessage {
			c.Nonce = n
			if c.VMID == "" {
				c.VMID = azureVM
			}
			if c.SubscriptionID == "" {
				c.SubscriptionID = azureSub
			}
			if c.CreatedOn.IsZero() {
				c.CreatedOn = catest.Epoch.Add(-time.Minute)
			}
			return azureEvidence(ms.Document(t, c))
		}
		n := nonce(t)
		good := doc(t, n, azuretest.Content{})
		res, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: good})
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if res.SPIFFEID != "spiffe://workers.example.com/worker/vms/"+azureVM {
			t.Fatalf("SPIFFE ID = %s", res.SPIFFEID)
		}
		tests := []struct {
			name string
			req  func(t *testing.T) enroll.EnrollRequest
			want error
		}{
			{"fail/document-replayed", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: good}
			}, enroll.ErrNonceUsed},
			{"fail/document-with-another-nonce", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: nonce(t), Evidence: good}
			}, enroll.ErrAttestationInvalid},
			{"fail/no-nonce", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Evidence: good}
			}, enroll.ErrNonceRequired},
			{"fail/subscription-not-allowed", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: doc(t, n, azuretest.Content{SubscriptionID: "99999999-1111-2222-3333-444444444444"})}
			}, enroll.ErrAttestationNotAllowed},
			{"fail/expired", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: doc(t, n, azuretest.Content{CreatedOn: catest.Epoch.Add(-7 * time.Hour)})}
			}, enroll.ErrAttestationExpired},
			{"fail/signer-not-trusted", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				other := azuretest.NewAuthority(t)
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n,
					Evidence: azureEvidence(other.Document(t, azuretest.Content{Nonce: n, VMID: azureVM, SubscriptionID: azureSub, CreatedOn: catest.Epoch.Add(-time.Minute)}))}
			}, enroll.ErrAttestationInvalid},
			{"fail/signer-not-metadata-azure-com", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				evil := azuretest.NewAuthority(t, azuretest.WithSignerDNSName("evilmetadata.azure.com"))
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: n,
					Evidence: azureEvidence(evil.Document(t, azuretest.Content{Nonce: n, VMID: azureVM, SubscriptionID: azureSub, CreatedOn: catest.Epoch.Add(-time.Minute)}))}
			}, enroll.ErrAttestationInvalid},
			{"fail/evidence-malformed", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodAzure, CSR: csrPEM(t, ca.KeyP256), Nonce: nonce(t), Evidence: json.RawMessage(`{"document":"not base64 !"}`)}
			}, enroll.ErrEvidenceMalformed},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := f.activeWorkers(t, "vms")
				if _, err := f.svc.Enroll(ctx, tc.req(t)); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if f.activeWorkers(t, "vms") != before {
					t.Fatal("a refused enrollment recorded a certificate")
				}
			})
		}
	})
}
