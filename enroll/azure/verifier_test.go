package azure_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/azure"
	"github.com/workerca/workerca/enroll/azure/azuretest"
)

// created is when the stand-in documents were "signed"; the default test
// clock is one minute later.
var created = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	nonce = "20260501-120000"
	vmID  = "0f5bd52c-4b43-4a5e-9f8e-3c1d2f6b7a90"
	sub   = "8a205152-b25a-417f-a676-80465535a6c9"
)

func content() azuretest.Content {
	return azuretest.Content{Nonce: nonce, VMID: vmID, SubscriptionID: sub, CreatedOn: created, SKU: "22_04-lts-gen2"}
}

// trusting is a Config whose roots and intermediates are the authorities'.
func trusting(as ...*azuretest.Authority) *azure.Config {
	cfg := &azure.Config{}
	for _, a := range as {
		cfg.Roots = append(cfg.Roots, a.Roots()...)
		cfg.Intermediates = append(cfg.Intermediates, a.Intermediates()...)
	}
	return cfg
}

// mutate decodes the base64 PKCS#7 of ev, lets f change the DER and
// re-encodes it.
func mutate(t *testing.T, ev azure.Evidence, f func(der []byte)) azure.Evidence {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(ev.Document)
	if err != nil {
		t.Fatal(err)
	}
	f(der)
	return azure.Evidence{Document: base64.StdEncoding.EncodeToString(der)}
}

// flipInContent changes one character of the vmId inside the signed
// content, keeping the JSON valid.
func flipInContent(t *testing.T) func([]byte) {
	return func(der []byte) {
		i := bytes.Index(der, []byte(`"vmId":"`))
		if i < 0 {
			t.Fatal("vmId not found in the PKCS#7")
		}
		der[i+len(`"vmId":"`)] ^= 0x01 // '0' <-> '1', 'd' <-> 'e', ...
	}
}

// flipLastByte changes the last byte of the DER, which is the last byte
// of the SignerInfo's signature when there are no unsigned attributes.
func flipLastByte(der []byte) { der[len(der)-1] ^= 0xff }

func TestVerify(t *testing.T) {
	t.Parallel()
	a := azuretest.NewAuthority(t)
	other := azuretest.NewAuthority(t)
	carrying := azuretest.NewAuthority(t, azuretest.WithIssuingInPKCS7())
	management := azuretest.NewAuthority(t, azuretest.WithSignerDNSName("management.azure.com"))
	lookalike := azuretest.NewAuthority(t, azuretest.WithSignerDNSName("evilmetadata.azure.com"))
	suffixed := azuretest.NewAuthority(t, azuretest.WithSignerDNSName("metadata.azure.com.example.net"))
	lapsed := azuretest.NewAuthority(t, azuretest.WithSignerValidity(created.Add(-48*time.Hour), created.Add(-time.Hour)))

	ok := a.Document(t, content())
	long := a.Document(t, content()).Document
	var wrapped strings.Builder
	for len(long) > 64 {
		wrapped.WriteString(long[:64] + "\n")
		long = long[64:]
	}
	wrapped.WriteString(long + "\n")

	withContent := func(f func(*azuretest.Content)) azure.Evidence {
		c := content()
		f(&c)
		return a.Document(t, c)
	}

	tests := []struct {
		name   string
		cfg    *azure.Config // nil: trusting(a)
		ev     azure.Evidence
		policy *azure.Policy // nil: {Nonce: nonce}
		now    time.Time     // zero: created + 1m
		want   error         // nil: must verify
		check  func(*testing.T, *azure.Document)
	}{
		{name: "ok/base64-pkcs7", ev: ok, check: func(t *testing.T, d *azure.Document) {
			if d.VMID != vmID || d.SubscriptionID != sub || d.Nonce != nonce || d.SKU != "22_04-lts-gen2" {
				t.Errorf("document = %+v", d)
			}
			if !d.CreatedOn.Equal(created) || !d.ExpiresOn.Equal(created.Add(6*time.Hour)) {
				t.Errorf("createdOn %s expiresOn %s", d.CreatedOn, d.ExpiresOn)
			}
			if d.Signer.Subject.CommonName != azure.SignerDomain {
				t.Errorf("signer CN %q", d.Signer.Subject.CommonName)
			}
			if len(d.SHA256) != 64 || strings.ToLower(d.SHA256) != d.SHA256 {
				t.Errorf("SHA256 %q is not lowercase hex SHA-256", d.SHA256)
			}
		}},
		{name: "ok/whole-imds-answer", ev: a.Answer(t, content())},
		{name: "ok/base64-with-line-breaks", ev: azure.Evidence{Document: wrapped.String()}},
		{name: "ok/issuing-ca-carried-in-pkcs7", cfg: &azure.Config{Roots: carrying.Roots()}, ev: carrying.Document(t, content())},
		{name: "ok/marketplace-plan", ev: withContent(func(c *azuretest.Content) { c.Publisher, c.Offer = "canonical", "ubuntu-24_04-lts" }),
			check: func(t *testing.T, d *azure.Document) {
				if d.Publisher != "canonical" || d.Offer != "ubuntu-24_04-lts" {
					t.Errorf("publisher %q offer %q", d.Publisher, d.Offer)
				}
			}},
		{name: "ok/subscription-allowed-any-case", ev: ok, policy: &azure.Policy{Nonce: nonce, Subscriptions: []string{"11111111-2222-3333-4444-555555555555", strings.ToUpper(sub)}}},
		{name: "ok/created-within-clock-skew", ev: ok, now: created.Add(-59 * time.Second)},
		{name: "ok/one-second-before-expiry", ev: ok, now: created.Add(6*time.Hour - time.Second)},

		{name: "fail/malformed-empty", ev: azure.Evidence{}, want: azure.ErrMalformed},
		{name: "fail/malformed-bad-base64", ev: azure.Evidence{Document: "MIIL%%%not-base64"}, want: azure.ErrMalformed},
		{name: "fail/malformed-not-pkcs7", ev: azure.Evidence{Document: base64.StdEncoding.EncodeToString(a.Signer().Raw)}, want: azure.ErrMalformed},
		{name: "fail/malformed-imds-answer-not-json", ev: azure.Evidence{Document: `{"encoding":"pkcs7",`}, want: azure.ErrMalformed},
		{name: "fail/malformed-imds-answer-encoding-not-pkcs7", ev: azure.Evidence{Document: `{"encoding":"jwt","signature":"` + ok.Document + `"}`}, want: azure.ErrMalformed},
		{name: "fail/malformed-imds-answer-without-signature", ev: azure.Evidence{Document: `{"encoding":"pkcs7"}`}, want: azure.ErrMalformed},
		{name: "fail/malformed-too-large", ev: azure.Evidence{Document: strings.Repeat("A", azure.MaxEvidenceBytes+4)}, want: azure.ErrMalformed},
		{name: "fail/malformed-content-not-json", ev: a.Sign(t, []byte("vmId=0f5bd52c")), want: azure.ErrMalformed},
		{name: "fail/malformed-content-missing-vmid", ev: withContent(func(c *azuretest.Content) { c.VMID = "" }), want: azure.ErrMalformed},
		{name: "fail/malformed-content-rfc3339-times", ev: a.Sign(t, []byte(`{"nonce":"`+nonce+`","timeStamp":{"createdOn":"2026-05-01T12:00:00Z","expiresOn":"2026-05-01T18:00:00Z"},"vmId":"`+vmID+`"}`)), want: azure.ErrMalformed},
		{name: "fail/malformed-content-valid-longer-than-6h", ev: withContent(func(c *azuretest.Content) { c.ExpiresOn = created.Add(6*time.Hour + time.Second) }), want: azure.ErrMalformed},
		{name: "fail/malformed-lapsed-signer-backdated-long-lived-document", cfg: trusting(lapsed),
			ev: lapsed.Document(t, azuretest.Content{Nonce: nonce, VMID: vmID, CreatedOn: created.Add(-2 * time.Hour), ExpiresOn: created.Add(365 * 24 * time.Hour)}), want: azure.ErrMalformed},
		{name: "fail/malformed-content-expires-before-created", ev: withContent(func(c *azuretest.Content) { c.ExpiresOn = created.Add(-time.Second) }), want: azure.ErrMalformed},

		{name: "fail/signature-byte-changed", ev: mutate(t, ok, flipLastByte), want: azure.ErrSignature},
		{name: "fail/content-byte-changed", ev: mutate(t, ok, flipInContent(t)), want: azure.ErrSignature},

		{name: "fail/untrusted-root", ev: other.Document(t, content()), want: azure.ErrUntrusted},
		{name: "fail/untrusted-shipped-roots-only", cfg: &azure.Config{}, ev: ok, want: azure.ErrUntrusted},
		{name: "fail/untrusted-without-issuing-ca", cfg: &azure.Config{Roots: a.Roots()}, ev: ok, want: azure.ErrUntrusted},
		{name: "fail/untrusted-signer-expired-at-created-on", cfg: trusting(lapsed), ev: lapsed.Document(t, content()), want: azure.ErrUntrusted},

		{name: "fail/signer-not-metadata-azure-com", cfg: trusting(management), ev: management.Document(t, content()), want: azure.ErrSigner},
		{name: "fail/signer-lookalike-evilmetadata-azure-com", cfg: trusting(lookalike), ev: lookalike.Document(t, content()), want: azure.ErrSigner},
		{name: "fail/signer-metadata-azure-com-as-prefix", cfg: trusting(suffixed), ev: suffixed.Document(t, content()), want: azure.ErrSigner},

		{name: "fail/expired-at-expires-on", ev: ok, now: created.Add(6 * time.Hour), want: azure.ErrExpired},
		{name: "fail/expired-a-day-later", ev: ok, now: created.Add(24 * time.Hour), want: azure.ErrExpired},
		{name: "fail/created-in-future", ev: ok, now: created.Add(-61 * time.Second), want: azure.ErrExpired},

		{name: "fail/wrong-nonce", ev: ok, policy: &azure.Policy{Nonce: "20260501-120001"}, want: azure.ErrNonce},
		{name: "fail/policy-without-nonce", ev: ok, policy: &azure.Policy{}, want: azure.ErrNonce},
		{name: "fail/document-without-nonce", ev: withContent(func(c *azuretest.Content) { c.Nonce = "" }), want: azure.ErrNonce},

		{name: "fail/subscription-not-allowed", ev: ok, policy: &azure.Policy{Nonce: nonce, Subscriptions: []string{"11111111-2222-3333-4444-555555555555"}}, want: azure.ErrSubscriptionNotAllowed},
		{name: "fail/subscription-missing-with-allow-list", ev: withContent(func(c *azuretest.Content) { c.SubscriptionID = "" }), policy: &azure.Policy{Nonce: nonce, Subscriptions: []string{sub}}, want: azure.ErrSubscriptionNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := *trusting(a)
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			now := tt.now
			if now.IsZero() {
				now = created.Add(time.Minute)
			}
			cfg.Clock = func() time.Time { return now }
			v, err := azure.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := azure.Policy{Nonce: nonce}
			if tt.policy != nil {
				p = *tt.policy
			}
			doc, err := v.Verify(tt.ev, p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify error = %v, want %v", err, tt.want)
				}
				if doc != nil {
					t.Fatalf("Verify returned a document with error %v", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if doc.VMID != vmID {
				t.Errorf("VMID = %q, want %q", doc.VMID, vmID)
			}
			if tt.check != nil {
				tt.check(t, doc)
			}
		})
	}
}

// TestVerify_sha256 checks that Document.SHA256 identifies the PKCS#7
// whichever form the evidence came in, and differs between documents.
func TestVerify_sha256(t *testing.T) {
	t.Parallel()
	a := azuretest.NewAuthority(t)
	cfg := trusting(a)
	cfg.Clock = func() time.Time { return created }
	v, err := azure.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	der := a.PKCS7(t, content().JSON(t))
	b64 := base64.StdEncoding.EncodeToString(der)
	first, err := v.Verify(azure.Evidence{Document: b64}, azure.Policy{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Verify(azure.Evidence{Document: `{"encoding":"pkcs7","signature":"` + b64 + `"}`}, azure.Policy{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	if first.SHA256 != again.SHA256 {
		t.Errorf("same PKCS#7 hashed %s and %s", first.SHA256, again.SHA256)
	}
	c := content()
	c.CreatedOn = created.Add(-time.Second)
	other, err := v.Verify(a.Document(t, c), azure.Policy{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	if other.SHA256 == first.SHA256 {
		t.Error("different documents share a SHA256")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	root := azuretest.NewAuthority(t).Roots()[0]
	tests := []struct {
		name    string
		cfg     azure.Config
		wantErr bool
	}{
		{name: "ok/zero-config-uses-shipped-roots", cfg: azure.Config{}},
		{name: "ok/own-roots", cfg: azure.Config{Roots: []*x509.Certificate{root}}},
		{name: "fail/empty-roots", cfg: azure.Config{Roots: []*x509.Certificate{}}, wantErr: true},
		{name: "fail/nil-root", cfg: azure.Config{Roots: []*x509.Certificate{nil}}, wantErr: true},
		{name: "fail/nil-intermediate", cfg: azure.Config{Intermediates: []*x509.Certificate{nil}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := azure.New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && v == nil {
				t.Fatal("New returned nil and no error")
			}
		})
	}
}
