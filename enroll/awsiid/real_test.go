package awsiid_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/awsiid"
	"github.com/workerca/workerca/internal/sharedtestdata"
)

// realSample is one folder of ../shared/testdata/attestation/aws-iid: a
// document signed by AWS, in one or more forms.
type realSample struct {
	name    string
	doc     []byte
	meta    struct{ AccountID, Region, InstanceID, PendingTime string }
	pending time.Time
	forms   map[string]string // file name -> form
}

func loadRealSamples(t *testing.T) (string, []realSample) {
	t.Helper()
	root := filepath.Join(sharedtestdata.Attestation(t), "aws-iid")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []realSample
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		s := realSample{name: d.Name(), forms: map[string]string{}}
		dir := filepath.Join(root, d.Name())
		if s.doc, err = os.ReadFile(filepath.Join(dir, "document.json")); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(s.doc, &s.meta); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.pending, err = time.Parse(time.RFC3339, s.meta.PendingTime); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			switch n := f.Name(); {
			case n == "signature.b64":
				s.forms[n] = awsiid.FormSignature
			case strings.HasPrefix(n, "rsa2048") && strings.HasSuffix(n, ".b64"):
				s.forms[n] = awsiid.FormRSA2048
			case n == "pkcs7.b64" || n == "pkcs7.pem":
				s.forms[n] = awsiid.FormPKCS7DSA
			}
		}
		if len(s.forms) == 0 {
			t.Fatalf("%s: no signature file", s.name)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		t.Fatalf("no samples under %s", root)
	}
	return root, out
}

// TestVerifyRealEvidence verifies every real AWS-signed sample, in every
// form it has, with the shipped certificates only, and checks that
// changing one byte of the document or of the signature is refused.
func TestVerifyRealEvidence(t *testing.T) {
	t.Parallel()
	root, samples := loadRealSamples(t)
	for _, s := range samples {
		// Pinned shortly after launch: the documents are years old.
		v := mustNew(t, awsiid.Config{Clock: fixedClock(s.pending.Add(2 * time.Minute))})
		late := mustNew(t, awsiid.Config{Clock: fixedClock(s.pending.Add(awsiid.DefaultMaxAge + time.Minute))})
		p := awsiid.Policy{Accounts: []string{s.meta.AccountID}, Regions: []string{s.meta.Region}}
		// A changed account digit keeps the JSON valid; admit both
		// accounts so only the signature can refuse it.
		pChanged := awsiid.Policy{Accounts: []string{s.meta.AccountID, string(changeDigit(t, []byte(s.meta.AccountID), s.meta.AccountID))}}

		for file, form := range s.forms {
			b, err := os.ReadFile(filepath.Join(root, s.name, file))
			if err != nil {
				t.Fatal(err)
			}
			payload := string(b)
			ev := func(document string) awsiid.Evidence {
				if form == awsiid.FormSignature {
					return awsiid.Evidence{Document: document, Signature: payload}
				}
				return awsiid.Evidence{Document: document, PKCS7: payload}
			}
			prefix := s.name + "/" + file

			t.Run("ok/"+prefix, func(t *testing.T) {
				t.Parallel()
				got, err := v.Verify(ev(string(s.doc)), p)
				if err != nil {
					t.Fatalf("Verify() error = %v", err)
				}
				if got.Form != form || got.AccountID != s.meta.AccountID || got.Region != s.meta.Region ||
					got.InstanceID != s.meta.InstanceID || !got.PendingTime.Equal(s.pending) || !bytes.Equal(got.Raw, s.doc) {
					t.Fatalf("Verify() = %+v", got)
				}
			})
			t.Run("fail/"+prefix+"/too-old", func(t *testing.T) {
				t.Parallel()
				if _, err := late.Verify(ev(string(s.doc)), p); !errors.Is(err, awsiid.ErrTooOld) {
					t.Fatalf("Verify() error = %v, want %v", err, awsiid.ErrTooOld)
				}
			})
			t.Run("fail/"+prefix+"/document-one-byte-changed", func(t *testing.T) {
				t.Parallel()
				// /signature: the signature no longer matches. PKCS#7: the
				// document is no longer the signed content.
				want := map[bool]error{true: awsiid.ErrSignature, false: awsiid.ErrMalformed}[form == awsiid.FormSignature]
				changed := changeDigit(t, s.doc, s.meta.AccountID)
				if _, err := v.Verify(ev(string(changed)), pChanged); !errors.Is(err, want) {
					t.Fatalf("Verify() error = %v, want %v", err, want)
				}
			})
			if form == awsiid.FormSignature {
				t.Run("fail/"+prefix+"/signature-one-byte-changed", func(t *testing.T) {
					t.Parallel()
					bad := awsiid.Evidence{Document: string(s.doc), Signature: encodeB64(flipLast(decodeB64(t, payload)))}
					if _, err := v.Verify(bad, p); !errors.Is(err, awsiid.ErrSignature) {
						t.Fatalf("Verify() error = %v, want %v", err, awsiid.ErrSignature)
					}
				})
				continue
			}
			t.Run("ok/"+prefix+"/document-taken-from-pkcs7", func(t *testing.T) {
				t.Parallel()
				got, err := v.Verify(ev(""), p)
				if err != nil {
					t.Fatalf("Verify() error = %v", err)
				}
				if !bytes.Equal(got.Raw, s.doc) || got.Form != form {
					t.Fatalf("Verify() = %+v", got)
				}
			})
			t.Run("fail/"+prefix+"/pkcs7-content-one-byte-changed", func(t *testing.T) {
				t.Parallel()
				bad := awsiid.Evidence{PKCS7: encodeB64(changeDigit(t, decodeB64(t, payload), s.meta.AccountID))}
				if _, err := v.Verify(bad, pChanged); !errors.Is(err, awsiid.ErrSignature) {
					t.Fatalf("Verify() error = %v, want %v", err, awsiid.ErrSignature)
				}
			})
			t.Run("fail/"+prefix+"/pkcs7-signature-one-byte-changed", func(t *testing.T) {
				t.Parallel()
				bad := awsiid.Evidence{Document: string(s.doc), PKCS7: pkcs7SignatureChanged(t, payload)}
				if _, err := v.Verify(bad, p); !errors.Is(err, awsiid.ErrSignature) {
					t.Fatalf("Verify() error = %v, want %v", err, awsiid.ErrSignature)
				}
			})
		}
	}
}

// TestRenewedSignatureCertificate pins the decision recorded in
// certs/SOURCES.md: AWS re-issued the shared RSA-1024 /signature
// certificate in 2024 with the 2014 certificate's key, and documents
// signed years before the re-issue verify with the re-issued certificate
// we ship, because only its key is used.
func TestRenewedSignatureCertificate(t *testing.T) {
	t.Parallel()
	root, samples := loadRealSamples(t)
	shipped := map[string]*x509.Certificate{}
	for _, c := range awsiid.Shipped() {
		if c.Form == awsiid.FormSignature {
			shipped[c.Region] = c.Cert
		}
	}
	tested := 0
	for _, s := range samples {
		if _, ok := s.forms["signature.b64"]; !ok {
			continue
		}
		tested++
		t.Run("ok/"+s.name, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join(root, s.name, "aws_rsa_cert_2014-2024.pem"))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(b)
			old, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			renewed := shipped[s.meta.Region]
			if !bytes.Equal(old.RawSubjectPublicKeyInfo, renewed.RawSubjectPublicKeyInfo) {
				t.Fatalf("shipped %s certificate has a different key from the 2014-2024 one", s.meta.Region)
			}
			if !renewed.NotBefore.After(s.pending) || !old.NotAfter.Before(renewed.NotAfter) {
				t.Fatalf("shipped certificate %s..%s is not the re-issue postdating the %s document",
					renewed.NotBefore, renewed.NotAfter, s.pending)
			}
			sig, err := os.ReadFile(filepath.Join(root, s.name, "signature.b64"))
			if err != nil {
				t.Fatal(err)
			}
			v := mustNew(t, awsiid.Config{Clock: fixedClock(s.pending)})
			ev := awsiid.Evidence{Document: string(s.doc), Signature: string(sig)}
			if _, err := v.Verify(ev, awsiid.Policy{Accounts: []string{s.meta.AccountID}}); err != nil {
				t.Fatalf("Verify() with the re-issued certificate: %v", err)
			}
		})
	}
	if tested < 2 {
		t.Fatalf("%d samples with /signature, want at least 2", tested)
	}
}
