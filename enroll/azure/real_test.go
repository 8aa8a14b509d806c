package azure_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/azure"
	"github.com/workerca/workerca/enroll/azure/azuretest"
	"github.com/workerca/workerca/internal/sharedtestdata"
)

// realSample is one folder of ../shared/testdata/attestation/azure-imds:
// a document Azure really signed, read in place (never copied here).
type realSample struct {
	name      string
	b64       string // attested.p7.b64, the IMDS "signature" field
	vmID      string
	nonce     string
	sub       string
	createdOn time.Time
	expiresOn time.Time
	// root and intermediates are the sample's root.pem and
	// intermediates.pem: the chain the evidence was checked with.
	root          *x509.Certificate
	intermediates []*x509.Certificate
}

// realSamples loads every sample folder; it skips without the shared
// folder and fails under CI=true (sharedtestdata.Attestation).
func realSamples(t *testing.T) []realSample {
	t.Helper()
	dir := filepath.Join(sharedtestdata.Attestation(t), "azure-imds")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []realSample
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b64, err := os.ReadFile(filepath.Join(dir, e.Name(), "attested.p7.b64"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name(), "content.json"))
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Nonce          string `json:"nonce"`
			SubscriptionID string `json:"subscriptionId"`
			VMID           string `json:"vmId"`
			TimeStamp      struct {
				CreatedOn string `json:"createdOn"`
				ExpiresOn string `json:"expiresOn"`
			} `json:"timeStamp"`
		}
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		s := realSample{name: e.Name(), b64: strings.TrimSpace(string(b64)), vmID: c.VMID, nonce: c.Nonce, sub: c.SubscriptionID}
		if s.createdOn, err = time.Parse(azure.TimeLayout, c.TimeStamp.CreatedOn); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if s.expiresOn, err = time.Parse(azure.TimeLayout, c.TimeStamp.ExpiresOn); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		roots := sharedtestdata.Certificates(t, filepath.Join(dir, e.Name(), "root.pem"))
		if len(roots) != 1 {
			t.Fatalf("%s: root.pem holds %d certificates, want 1", e.Name(), len(roots))
		}
		s.root = roots[0]
		s.intermediates = sharedtestdata.Certificates(t, filepath.Join(dir, e.Name(), "intermediates.pem"))
		out = append(out, s)
	}
	if len(out) < 11 {
		t.Fatalf("found %d Azure IMDS samples in %s, want all 11", len(out), dir)
	}
	return out
}

func verifierAt(t *testing.T, cfg azure.Config, now time.Time) *azure.Verifier {
	t.Helper()
	cfg.Clock = func() time.Time { return now }
	v, err := azure.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerify_realEvidence verifies every real IMDS document (2019–2026,
// five Microsoft CA families) with the shipped roots and intermediates
// only, the clock pinned inside [createdOn, expiresOn], then shows that
// one changed byte, a wrong nonce, the passing of expiresOn or a foreign
// root each refuse it.
func TestVerify_realEvidence(t *testing.T) {
	t.Parallel()
	samples := realSamples(t)
	foreign := azuretest.NewAuthority(t)
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			inside := s.createdOn.Add(30 * time.Minute)
			shipped := verifierAt(t, azure.Config{}, inside)
			policy := azure.Policy{Nonce: s.nonce}
			ev := azure.Evidence{Document: s.b64}

			t.Run("ok/signature-field", func(t *testing.T) {
				doc, err := shipped.Verify(ev, policy)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if doc.VMID != s.vmID || doc.Nonce != s.nonce || doc.SubscriptionID != s.sub {
					t.Errorf("document %+v, want vmId %s nonce %s subscription %s", doc, s.vmID, s.nonce, s.sub)
				}
				if !doc.CreatedOn.Equal(s.createdOn) || !doc.ExpiresOn.Equal(s.expiresOn) {
					t.Errorf("createdOn %s expiresOn %s", doc.CreatedOn, doc.ExpiresOn)
				}
				t.Logf("vmId %s signed by %q (issuer %q)", doc.VMID, doc.Signer.DNSNames, doc.Signer.Issuer.CommonName)
			})
			t.Run("ok/sample-root-is-shipped", func(t *testing.T) {
				for _, r := range azure.ShippedRoots() {
					if bytes.Equal(r.Raw, s.root.Raw) {
						return
					}
				}
				t.Fatalf("the sample's root %q is not one of ShippedRoots", s.root.Subject.CommonName)
			})
			t.Run("ok/sample-root-with-sample-intermediates-in-config", func(t *testing.T) {
				// Only the root the evidence was checked with is trusted, and
				// its issuing CAs arrive through Config.Intermediates.
				v := verifierAt(t, azure.Config{Roots: []*x509.Certificate{s.root}, Intermediates: s.intermediates}, inside)
				if _, err := v.Verify(ev, policy); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			})
			t.Run("ok/whole-imds-answer-with-subscription-allow-list", func(t *testing.T) {
				answer := azure.Evidence{Document: `{"encoding":"pkcs7","signature":"` + s.b64 + `"}`}
				p := policy
				if s.sub != "" {
					p.Subscriptions = []string{s.sub}
				}
				if _, err := shipped.Verify(answer, p); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			})

			fails := []struct {
				name   string
				v      *azure.Verifier
				ev     azure.Evidence
				policy azure.Policy
				want   error
			}{
				{name: "fail/content-byte-changed", v: shipped, ev: mutate(t, ev, flipInContent(t)), policy: policy, want: azure.ErrSignature},
				{name: "fail/signature-byte-changed", v: shipped, ev: mutate(t, ev, flipLastByte), policy: policy, want: azure.ErrSignature},
				{name: "fail/wrong-nonce", v: shipped, ev: ev, policy: azure.Policy{Nonce: s.nonce + "0"}, want: azure.ErrNonce},
				{name: "fail/subscription-not-allowed", v: shipped, ev: ev, policy: azure.Policy{Nonce: s.nonce, Subscriptions: []string{"00000000-0000-0000-0000-000000000000"}}, want: azure.ErrSubscriptionNotAllowed},
				{name: "fail/expired", v: verifierAt(t, azure.Config{}, s.expiresOn), ev: ev, policy: policy, want: azure.ErrExpired},
				{name: "fail/created-in-future", v: verifierAt(t, azure.Config{}, s.createdOn.Add(-2*time.Minute)), ev: ev, policy: policy, want: azure.ErrExpired},
				{name: "fail/untrusted-foreign-root", v: verifierAt(t, azure.Config{Roots: foreign.Roots()}, inside), ev: ev, policy: policy, want: azure.ErrUntrusted},
			}
			for _, f := range fails {
				t.Run(f.name, func(t *testing.T) {
					doc, err := f.v.Verify(f.ev, f.policy)
					if !errors.Is(err, f.want) || doc != nil {
						t.Fatalf("Verify = %v, %v; want %v", doc, err, f.want)
					}
				})
			}
		})
	}
}
