package enroll_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/awsiid"
	"github.com/workerca/workerca/enroll/awsiid/awsiidtest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

const awsAccount = "111122223333"

// awsFixture is a service with an aws-iid attestor trusting a stand-in
// AWS signing key, and two pools for account awsAccount: "ec2" (one
// enrollment per instance, ever) and "ec2-again" in region eu-west-1
// (again after expiry).
func awsFixture(t *testing.T, st *store.Store) (*fixture, *awsiidtest.Signer) {
	t.Helper()
	clk := &clock{now: catest.Epoch}
	signer := awsiidtest.NewSigner(t)
	v, err := awsiid.New(awsiid.Config{Certificates: []*x509.Certificate{signer.Certificate()}, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	att, err := enroll.NewAWSAttestor(enroll.AWSConfig{Verifier: v, Pools: []enroll.AWSPool{
		{Pool: "ec2", Policy: awsiid.Policy{Accounts: []string{awsAccount}, Regions: []string{"us-east-1"}}},
		{Pool: "ec2-again", Policy: awsiid.Policy{Accounts: []string{awsAccount}, Regions: []string{"eu-west-1"}, MaxAge: 48 * time.Hour}, Reattest: enroll.ReattestAfterExpiry},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return attestFixture(t, st, clk, att, pool(t, "ec2", 0, enroll.MethodAWS), pool(t, "ec2-again", 0, enroll.MethodAWS)), signer
}

func awsEvidence(ev awsiid.Evidence) json.RawMessage {
	b, _ := json.Marshal(ev)
	return b
}

func TestEnrollAWS(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f, signer := awsFixture(t, st)
		ctx := context.Background()
		doc := func(t *testing.T, d awsiidtest.Document, form string) json.RawMessage {
			if d.AccountID == "" {
				d.AccountID = awsAccount
			}
			if d.Region == "" {
				d.Region = "us-east-1"
			}
			if d.PendingTime.IsZero() {
				d.PendingTime = f.clock.Now().Add(-2 * time.Minute)
			}
			return awsEvidence(signer.Evidence(t, d, form))
		}
		enrollAWS := func(t *testing.T, ev json.RawMessage) (*enroll.Result, error) {
			return f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodAWS, CSR: csrPEM(t, ca.KeyP256), Evidence: ev})
		}
		first := doc(t, awsiidtest.Document{InstanceID: "i-0aaaaaaaaaaaaaaa1"}, awsiid.FormRSA2048)
		res, err := enrollAWS(t, first)
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if res.SPIFFEID != "spiffe://workers.example.com/worker/ec2/i-0aaaaaaaaaaaaaaa1" {
			t.Fatalf("SPIFFE ID = %s", res.SPIFFEID)
		}
		if _, err := enrollAWS(t, doc(t, awsiidtest.Document{InstanceID: "i-0aaaaaaaaaaaaaaa2"}, awsiid.FormSignature)); err != nil {
			t.Fatalf("Enroll with /signature: %v", err)
		}

		tests := []struct {
			name string
			ev   func(t *testing.T) json.RawMessage
			want error
		}{
			{"fail/document-replayed", func(*testing.T) json.RawMessage { return first }, enroll.ErrReplay},
			{"fail/same-instance-new-signature-form", func(t *testing.T) json.RawMessage {
				return doc(t, awsiidtest.Document{InstanceID: "i-0aaaaaaaaaaaaaaa1"}, awsiid.FormSignature)
			}, enroll.ErrReplay},
			{"fail/account-not-allowed", func(t *testing.T) json.RawMessage {
				return doc(t, awsiidtest.Document{AccountID: "999988887777", InstanceID: "i-0bbbbbbbbbbbbbbb1"}, awsiid.FormRSA2048)
			}, enroll.ErrAttestationNotAllowed},
			{"fail/region-not-allowed", func(t *testing.T) json.RawMessage {
				return doc(t, awsiidtest.Document{Region: "ap-south-1", InstanceID: "i-0bbbbbbbbbbbbbbb2"}, awsiid.FormRSA2048)
			}, enroll.ErrAttestationNotAllowed},
			{"fail/too-old", func(t *testing.T) json.RawMessage {
				return doc(t, awsiidtest.Document{InstanceID: "i-0bbbbbbbbbbbbbbb3", PendingTime: catest.Epoch.Add(-11 * time.Minute)}, awsiid.FormRSA2048)
			}, enroll.ErrAttestationExpired},
			{"fail/signer-not-trusted", func(t *testing.T) json.RawMessage {
				return awsEvidence(awsiidtest.NewSigner(t).Evidence(t, awsiidtest.Document{AccountID: awsAccount, Region: "us-east-1",
					InstanceID: "i-0bbbbbbbbbbbbbbb4", PendingTime: catest.Epoch.Add(-time.Minute)}, awsiid.FormSignature))
			}, enroll.ErrAttestationInvalid},
			{"fail/evidence-malformed", func(*testing.T) json.RawMessage { return json.RawMessage(`{"document":"{}","signature":"!!"}`) }, enroll.ErrEvidenceMalformed},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := f.activeWorkers(t, "ec2")
				if _, err := enrollAWS(t, tc.ev(t)); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if f.activeWorkers(t, "ec2") != before {
					t.Fatal("a refused enrollment recorded a certificate")
				}
			})
		}

		// Pool ec2-again: the same instance may enroll again once its
		// certificate (1h) has expired, not before.
		again := doc(t, awsiidtest.Document{Region: "eu-west-1", InstanceID: "i-0ccccccccccccccc1"}, awsiid.FormRSA2048)
		if _, err := enrollAWS(t, again); err != nil {
			t.Fatalf("first enrollment in ec2-again: %v", err)
		}
		if _, err := enrollAWS(t, again); !errors.Is(err, enroll.ErrReplay) {
			t.Fatalf("re-enrollment while the certificate lives: err = %v, want ErrReplay", err)
		}
		f.clock.Add(time.Hour)
		if _, err := enrollAWS(t, again); err != nil {
			t.Fatalf("re-enrollment after the certificate expired: %v", err)
		}
	})
}

// TestEnrollAWSReplayUnderConcurrency: one document sent many times at
// once gives exactly one certificate.
func TestEnrollAWSReplayUnderConcurrency(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f, signer := awsFixture(t, st)
		ev := awsEvidence(signer.Evidence(t, awsiidtest.Document{AccountID: awsAccount, Region: "us-east-1", InstanceID: "i-0ddddddddddddddd1",
			PendingTime: catest.Epoch.Add(-time.Minute)}, awsiid.FormRSA2048))
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			csr := csrPEM(t, ca.KeyP256)
			wg.Go(func() {
				_, errs[i] = f.svc.Enroll(context.Background(), enroll.EnrollRequest{Method: enroll.MethodAWS, CSR: csr, Evidence: ev})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, enroll.ErrReplay):
				t.Errorf("err = %v, want nil or ErrReplay", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d enrollments succeeded, want 1", ok)
		}
	})
}
