package awsiid_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/workerca/workerca/enroll/awsiid"
	"github.com/workerca/workerca/enroll/awsiid/awsiidtest"
)

// now is the fixed instant the stand-in tests run at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

const (
	account = "111122223333"
	region  = "us-east-1"
)

// doc is a valid stand-in document, launched one minute before now.
func doc() awsiidtest.Document {
	return awsiidtest.Document{
		AccountID:   account,
		Region:      region,
		InstanceID:  "i-0123456789abcdef0",
		PendingTime: now.Add(-time.Minute),
	}
}

func policy() awsiid.Policy { return awsiid.Policy{Accounts: []string{account}} }

// decodeB64 decodes evidence base64 the way the verifier does (armor and
// line breaks ignored).
func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "-----") {
			b.WriteString(strings.TrimSpace(line))
		}
	}
	der, err := base64.StdEncoding.DecodeString(b.String())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// flipLast returns b with its last byte changed.
func flipLast(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-1] ^= 0x01
	return c
}

// changeDigit returns b with the first digit of the first occurrence of
// sub changed, keeping the bytes valid JSON.
func changeDigit(t *testing.T, b []byte, sub string) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(sub))
	if i < 0 {
		t.Fatalf("%q not found", sub)
	}
	c := bytes.Clone(b)
	if c[i] == '9' {
		c[i] = '8'
	} else {
		c[i]++
	}
	return c
}

// pkcs7SignatureChanged returns the PKCS#7 with the last byte of its
// signature value changed.
func pkcs7SignatureChanged(t *testing.T, p7b64 string) string {
	t.Helper()
	der := decodeB64(t, p7b64)
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	sig := p7.Signers[0].EncryptedDigest
	i := bytes.LastIndex(der, sig)
	if i < 0 {
		t.Fatal("signature value not found in the DER")
	}
	c := bytes.Clone(der)
	c[i+len(sig)-1] ^= 0x01
	return encodeB64(c)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	signer := awsiidtest.NewSigner(t)
	stranger := awsiidtest.NewSigner(t)

	trusting, err := awsiid.New(awsiid.Config{Certificates: []*x509.Certificate{signer.Certificate()}, Clock: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	regional, err := awsiid.New(awsiid.Config{
		Regional: []awsiid.Certificate{{Region: region, Form: awsiid.FormRSA2048, Cert: signer.Certificate()}},
		Clock:    fixedClock(now),
	})
	if err != nil {
		t.Fatal(err)
	}

	sigEv := signer.Evidence(t, doc(), awsiid.FormSignature)
	p7Ev := signer.Evidence(t, doc(), awsiid.FormRSA2048)
	at := func(d time.Duration) awsiidtest.Document { x := doc(); x.PendingTime = now.Add(d); return x }
	without := func(f func(*awsiidtest.Document)) awsiidtest.Document { x := doc(); f(&x); return x }

	tests := []struct {
		name   string
		v      *awsiid.Verifier
		ev     awsiid.Evidence
		policy *awsiid.Policy // nil: policy()
		form   string         // on success
		want   error
	}{
		{name: "ok/signature", ev: sigEv, form: awsiid.FormSignature},
		{name: "ok/rsa2048", ev: p7Ev, form: awsiid.FormRSA2048},
		{name: "ok/rsa2048-document-taken-from-pkcs7", ev: awsiid.Evidence{PKCS7: p7Ev.PKCS7}, form: awsiid.FormRSA2048},
		{name: "ok/pkcs7-with-pem-armor", ev: awsiid.Evidence{Document: p7Ev.Document, PKCS7: "-----BEGIN PKCS7-----\n" + p7Ev.PKCS7 + "\n\n-----END PKCS7-----\n"}, form: awsiid.FormRSA2048},
		{name: "ok/signature-on-one-line", ev: awsiid.Evidence{Document: sigEv.Document, Signature: strings.ReplaceAll(sigEv.Signature, "\n", "")}, form: awsiid.FormSignature},
		{name: "ok/region-in-allow-list", ev: sigEv, policy: &awsiid.Policy{Accounts: []string{"999999999999", account}, Regions: []string{"eu-west-1", region}}, form: awsiid.FormSignature},
		{name: "ok/exactly-max-age", ev: signer.Evidence(t, at(-awsiid.DefaultMaxAge), awsiid.FormSignature), form: awsiid.FormSignature},
		{name: "ok/future-within-clock-skew", ev: signer.Evidence(t, at(awsiid.ClockSkew), awsiid.FormSignature), form: awsiid.FormSignature},
		{name: "ok/regional-certificate-own-region-and-form", v: regional, ev: p7Ev, form: awsiid.FormRSA2048},

		{name: "fail/account-not-allowed", ev: sigEv, policy: &awsiid.Policy{Accounts: []string{"999999999999"}}, want: awsiid.ErrAccountNotAllowed},
		{name: "fail/no-account-configured", ev: p7Ev, policy: &awsiid.Policy{}, want: awsiid.ErrAccountNotAllowed},
		{name: "fail/region-not-allowed", ev: sigEv, policy: &awsiid.Policy{Accounts: []string{account}, Regions: []string{"eu-west-1"}}, want: awsiid.ErrRegionNotAllowed},
		{name: "fail/too-old", ev: signer.Evidence(t, at(-awsiid.DefaultMaxAge-time.Second), awsiid.FormSignature), want: awsiid.ErrTooOld},
		{name: "fail/too-old-for-policy-max-age", ev: signer.Evidence(t, at(-2*time.Minute), awsiid.FormRSA2048), policy: &awsiid.Policy{Accounts: []string{account}, MaxAge: time.Minute}, want: awsiid.ErrTooOld},
		{name: "fail/from-future", ev: signer.Evidence(t, at(awsiid.ClockSkew+time.Second), awsiid.FormSignature), want: awsiid.ErrFromFuture},

		{name: "fail/signer-not-trusted/signature", ev: stranger.Evidence(t, doc(), awsiid.FormSignature), want: awsiid.ErrSignature},
		{name: "fail/signer-not-trusted/rsa2048-with-its-certificate-inside", ev: stranger.Evidence(t, doc(), awsiid.FormRSA2048), want: awsiid.ErrSignature},
		{name: "fail/signer-not-trusted/shipped-certificates-only", v: mustNew(t, awsiid.Config{Clock: fixedClock(now)}), ev: sigEv, want: awsiid.ErrSignature},
		{name: "fail/regional-certificate-other-region", v: regional, ev: signer.Evidence(t, without(func(d *awsiidtest.Document) { d.Region = "eu-west-1" }), awsiid.FormRSA2048), policy: &awsiid.Policy{Accounts: []string{account}}, want: awsiid.ErrSignature},
		{name: "fail/regional-certificate-other-form", v: regional, ev: sigEv, want: awsiid.ErrSignature},

		{name: "fail/signature-one-byte-changed", ev: awsiid.Evidence{Document: sigEv.Document, Signature: encodeB64(flipLast(decodeB64(t, sigEv.Signature)))}, want: awsiid.ErrSignature},
		{name: "fail/document-one-byte-changed/signature", ev: awsiid.Evidence{Document: string(changeDigit(t, []byte(sigEv.Document), account)), Signature: sigEv.Signature}, policy: &awsiid.Policy{Accounts: []string{account, "211122223333"}}, want: awsiid.ErrSignature},
		{name: "fail/document-one-byte-changed/rsa2048", ev: awsiid.Evidence{Document: string(changeDigit(t, []byte(p7Ev.Document), account)), PKCS7: p7Ev.PKCS7}, want: awsiid.ErrMalformed},
		{name: "fail/document-trailing-newline/rsa2048", ev: awsiid.Evidence{Document: p7Ev.Document + "\n", PKCS7: p7Ev.PKCS7}, want: awsiid.ErrMalformed},
		{name: "fail/pkcs7-content-one-byte-changed", ev: awsiid.Evidence{PKCS7: encodeB64(changeDigit(t, decodeB64(t, p7Ev.PKCS7), account))}, policy: &awsiid.Policy{Accounts: []string{account, "211122223333"}}, want: awsiid.ErrSignature},
		{name: "fail/pkcs7-signature-one-byte-changed", ev: awsiid.Evidence{Document: p7Ev.Document, PKCS7: pkcs7SignatureChanged(t, p7Ev.PKCS7)}, want: awsiid.ErrSignature},

		{name: "fail/signature-bad-base64", ev: awsiid.Evidence{Document: sigEv.Document, Signature: "not*base64!"}, want: awsiid.ErrMalformed},
		{name: "fail/pkcs7-bad-base64", ev: awsiid.Evidence{Document: p7Ev.Document, PKCS7: "%%%"}, want: awsiid.ErrMalformed},
		{name: "fail/pkcs7-not-pkcs7", ev: awsiid.Evidence{Document: p7Ev.Document, PKCS7: encodeB64([]byte("hello, not ASN.1"))}, want: awsiid.ErrMalformed},
		{name: "fail/pkcs7-truncated", ev: awsiid.Evidence{Document: p7Ev.Document, PKCS7: encodeB64(decodeB64(t, p7Ev.PKCS7)[:200])}, want: awsiid.ErrMalformed},
		{name: "fail/document-not-json", ev: signer.Sign(t, []byte("instance i-0123 in us-east-1"), awsiid.FormSignature), want: awsiid.ErrMalformed},
		{name: "fail/document-json-array", ev: signer.Sign(t, []byte(`["accountId"]`), awsiid.FormRSA2048), want: awsiid.ErrMalformed},
		{name: "fail/document-missing-instance-id", ev: signer.Evidence(t, without(func(d *awsiidtest.Document) { d.InstanceID = "" }), awsiid.FormSignature), want: awsiid.ErrMalformed},
		{name: "fail/document-missing-account-id", ev: signer.Evidence(t, without(func(d *awsiidtest.Document) { d.AccountID = "" }), awsiid.FormRSA2048), want: awsiid.ErrMalformed},
		{name: "fail/document-missing-region", ev: signer.Evidence(t, without(func(d *awsiidtest.Document) { d.Region = "" }), awsiid.FormSignature), want: awsiid.ErrMalformed},
		{name: "fail/document-missing-pending-time", ev: signer.Evidence(t, without(func(d *awsiidtest.Document) { d.PendingTime = time.Time{} }), awsiid.FormSignature), want: awsiid.ErrMalformed},
		{name: "fail/document-pending-time-not-rfc3339", ev: signer.Sign(t, bytes.Replace(doc().JSON(), []byte(now.Add(-time.Minute).Format(time.RFC3339)), []byte("Sun, 01 Mar 2026 11:59:00 GMT"), 1), awsiid.FormSignature), want: awsiid.ErrMalformed},
		{name: "fail/both-signature-and-pkcs7", ev: awsiid.Evidence{Document: sigEv.Document, Signature: sigEv.Signature, PKCS7: p7Ev.PKCS7}, want: awsiid.ErrMalformed},
		{name: "fail/neither-signature-nor-pkcs7", ev: awsiid.Evidence{Document: sigEv.Document}, want: awsiid.ErrMalformed},
		{name: "fail/signature-without-document", ev: awsiid.Evidence{Signature: sigEv.Signature}, want: awsiid.ErrMalformed},
		{name: "fail/document-too-long", ev: awsiid.Evidence{Document: strings.Repeat(" ", 17<<10) + sigEv.Document, Signature: sigEv.Signature}, want: awsiid.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := tt.v
			if v == nil {
				v = trusting
			}
			p := policy()
			if tt.policy != nil {
				p = *tt.policy
			}
			got, err := v.Verify(tt.ev, p)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify() error = %v, want %v", err, tt.want)
				}
				if got != nil {
					t.Fatalf("Verify() returned a document with error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if got.Form != tt.form || got.AccountID != account || got.Region == "" || got.InstanceID == "" {
				t.Fatalf("Verify() = %+v", got)
			}
		})
	}
}

func TestVerifyDocumentFields(t *testing.T) {
	t.Parallel()
	signer := awsiidtest.NewSigner(t)
	v := mustNew(t, awsiid.Config{Certificates: []*x509.Certificate{signer.Certificate()}, Clock: fixedClock(now)})
	in := awsiidtest.Document{
		AccountID: account, Region: "eu-central-2", InstanceID: "i-0abc", ImageID: "ami-0def",
		InstanceType: "c7g.large", AvailabilityZone: "eu-central-2b", PrivateIP: "172.31.0.7",
		Architecture: "arm64", PendingTime: now.Add(-30 * time.Second),
	}
	for _, form := range []string{awsiid.FormSignature, awsiid.FormRSA2048} {
		t.Run("ok/"+form, func(t *testing.T) {
			t.Parallel()
			got, err := v.Verify(signer.Evidence(t, in, form), policy())
			if err != nil {
				t.Fatal(err)
			}
			want := awsiid.Document{
				AccountID: in.AccountID, Region: in.Region, InstanceID: in.InstanceID, ImageID: in.ImageID,
				InstanceType: in.InstanceType, AvailabilityZone: in.AvailabilityZone, PrivateIP: in.PrivateIP,
				Architecture: in.Architecture, PendingTime: in.PendingTime.Truncate(time.Second), Form: form, Raw: in.JSON(),
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("Verify() = %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestVerifyNegativeMaxAge(t *testing.T) {
	t.Parallel()
	signer := awsiidtest.NewSigner(t)
	v := mustNew(t, awsiid.Config{Certificates: []*x509.Certificate{signer.Certificate()}, Clock: fixedClock(now)})
	_, err := v.Verify(signer.Evidence(t, doc(), awsiid.FormSignature), awsiid.Policy{Accounts: []string{account}, MaxAge: -time.Second})
	if err == nil {
		t.Fatal("Verify() with a negative MaxAge succeeded")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	signer := awsiidtest.NewSigner(t)
	ecCert := ecdsaCertificate(t)
	tests := []struct {
		name string
		cfg  awsiid.Config
		ok   bool
	}{
		{name: "ok/zero-config", cfg: awsiid.Config{}, ok: true},
		{name: "ok/extra-and-regional", cfg: awsiid.Config{
			Certificates: []*x509.Certificate{signer.Certificate()},
			Regional:     []awsiid.Certificate{{Region: "us-west-2", Form: awsiid.FormPKCS7DSA, Cert: signer.Certificate()}},
		}, ok: true},
		{name: "fail/nil-certificate", cfg: awsiid.Config{Certificates: []*x509.Certificate{nil}}},
		{name: "fail/ecdsa-certificate", cfg: awsiid.Config{Certificates: []*x509.Certificate{ecCert}}},
		{name: "fail/regional-without-certificate", cfg: awsiid.Config{Regional: []awsiid.Certificate{{Region: "us-east-1"}}}},
		{name: "fail/regional-unknown-form", cfg: awsiid.Config{Regional: []awsiid.Certificate{{Form: "pkcs7", Cert: signer.Certificate()}}}},
		{name: "fail/regional-ecdsa-certificate", cfg: awsiid.Config{Regional: []awsiid.Certificate{{Cert: ecCert}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := awsiid.New(tt.cfg)
			if tt.ok != (err == nil) || tt.ok != (v != nil) {
				t.Fatalf("New() = %v, %v; want ok=%v", v, err, tt.ok)
			}
		})
	}
}

func TestDecodeEvidence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want awsiid.Evidence
		err  error
	}{
		{name: "ok/signature", in: `{"document":"{\"a\" : 1}\n","signature":"AAAA"}`, want: awsiid.Evidence{Document: "{\"a\" : 1}\n", Signature: "AAAA"}},
		{name: "ok/pkcs7-only", in: `{"document":"","pkcs7":"MIAG\nCSqG"}`, want: awsiid.Evidence{PKCS7: "MIAG\nCSqG"}},
		{name: "fail/not-json", in: `document=x`, err: awsiid.ErrMalformed},
		{name: "fail/unknown-field", in: `{"document":"x","rsa2048":"y"}`, err: awsiid.ErrMalformed},
		{name: "fail/trailing-data", in: `{"document":"x"} {}`, err: awsiid.ErrMalformed},
		{name: "fail/wrong-type", in: `{"document":42}`, err: awsiid.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := awsiid.DecodeEvidence([]byte(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("DecodeEvidence() error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("DecodeEvidence() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func mustNew(t *testing.T, cfg awsiid.Config) *awsiid.Verifier {
	t.Helper()
	v, err := awsiid.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ecdsaCertificate(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
