package enroll_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

const publicURL = "https://ca.example.com"

// gcpFixture is an enrollment service with a gcp-iit attestor over a
// stand-in Google (real keys, key set served over real HTTPS) and two
// pools: "gce" for project allowed-project, "gce-other" for other-project.
func gcpFixture(t *testing.T, st *store.Store) (*fixture, *gcpiittest.Provider) {
	t.Helper()
	clk := &clock{now: catest.Epoch}
	google := gcpiittest.NewProvider(t, gcpiittest.WithClock(clk.Now))
	v, err := gcpiit.New(google.Config(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	att, err := enroll.NewGCPAttestor(enroll.GCPConfig{Verifier: v, PublicURL: publicURL, Pools: []enroll.GCPPool{
		{Pool: "gce", Projects: []string{"allowed-project"}, MaxInstanceAge: time.Hour},
		{Pool: "gce-other", Projects: []string{"other-project"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return attestFixture(t, st, clk, att, pool(t, "gce", 0, enroll.MethodGCP), pool(t, "gce-other", 0, enroll.MethodGCP), pool(t, "default", 0, enroll.MethodToken)), google
}

func gcpEvidence(tok string) json.RawMessage {
	b, _ := json.Marshal(gcpiit.Evidence{Token: tok})
	return b
}

func TestEnrollGCP(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f, google := gcpFixture(t, st)
		ctx := context.Background()
		nonce := func(t *testing.T) string {
			ch, err := f.svc.CreateChallenge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ch.Nonce
		}
		n := nonce(t)
		tok := google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "allowed-project", InstanceID: "1234567890"})
		res, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: gcpEvidence(tok)})
		if err != nil {
			t.Fatalf("Enroll: %v", err)
		}
		if res.SPIFFEID != "spiffe://workers.example.com/worker/gce/1234567890" {
			t.Fatalf("SPIFFE ID = %s", res.SPIFFEID)
		}
		row, err := st.Certificate(ctx, res.Serial)
		if err != nil || row.Method != enroll.MethodGCP || row.AttestationSubject != "gcp:allowed-project:1234567890" {
			t.Fatalf("ledger row %+v, %v", row, err)
		}

		// The other project's pool is chosen by policy, in config order.
		n2 := nonce(t)
		other := google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n2, ProjectID: "other-project", InstanceID: "42"})
		res, err = f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n2, Evidence: gcpEvidence(other)})
		if err != nil || res.SPIFFEID != "spiffe://workers.example.com/worker/gce-other/42" {
			t.Fatalf("other project: %v, %v", res, err)
		}

		type tc struct {
			name string
			req  func(t *testing.T) enroll.EnrollRequest
			want error
		}
		tests := []tc{
			{"fail/token-replayed-with-its-nonce", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Evidence: gcpEvidence(tok)}
			}, enroll.ErrNonceUsed},
			{"fail/token-replayed-with-a-new-nonce", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: nonce(t), Evidence: gcpEvidence(tok)}
			}, enroll.ErrAttestationInvalid},
			{"fail/no-nonce", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Evidence: gcpEvidence(tok)}
			}, enroll.ErrNonceRequired},
			{"fail/project-not-allowed", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n,
					Evidence: gcpEvidence(google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "evil-project"}))}
			}, enroll.ErrAttestationNotAllowed},
			{"fail/instance-too-old", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n, Pool: "gce",
					Evidence: gcpEvidence(google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "allowed-project",
						InstanceCreated: catest.Epoch.Add(-2 * time.Hour)}))}
			}, enroll.ErrAttestationNotAllowed},
			{"fail/wrong-signature", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n,
					Evidence: gcpEvidence(google.SignedToken(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "allowed-project"}, gcpiittest.WrongKey))}
			}, enroll.ErrAttestationInvalid},
			{"fail/expired", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n,
					Evidence: gcpEvidence(google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "allowed-project",
						IssuedAt: catest.Epoch.Add(-3 * time.Hour)}))}
			}, enroll.ErrAttestationExpired},
			{"fail/key-type-not-allowed", func(t *testing.T) enroll.EnrollRequest {
				n := nonce(t)
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP384), Nonce: n,
					Evidence: gcpEvidence(google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n, ProjectID: "allowed-project", InstanceID: "77"}))}
			}, ca.ErrKeyNotAllowed},
			{"fail/evidence-malformed", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: nonce(t), Evidence: json.RawMessage(`{"jwt":"x"}`)}
			}, enroll.ErrEvidenceMalformed},
			{"fail/pool-without-gcp-policy", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: nonce(t), Pool: "default", Evidence: gcpEvidence(tok)}
			}, enroll.ErrMethodNotAllowed},
		}
		for _, c := range tests {
			t.Run(c.name, func(t *testing.T) {
				before := f.activeWorkers(t, "gce")
				if _, err := f.svc.Enroll(ctx, c.req(t)); !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				if f.activeWorkers(t, "gce") != before {
					t.Fatal("a refused enrollment recorded a certificate")
				}
			})
		}

		// Google's key set unreachable and never fetched: 503-kind, no
		// certificate. (A fresh fixture: this one has the set cached.)
		f2, google2 := gcpFixture(t, st)
		google2.SetDown(true)
		n3, err := f2.svc.CreateChallenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f2.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csrPEM(t, ca.KeyP256), Nonce: n3.Nonce,
			Evidence: gcpEvidence(google2.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + n3.Nonce, ProjectID: "allowed-project"}))})
		if !errors.Is(err, enroll.ErrAttestorUnavailable) {
			t.Fatalf("key set down: err = %v, want ErrAttestorUnavailable", err)
		}
	})
}

// TestEnrollGCPReplayUnderConcurrency: one token and its nonce sent many
// times at once gives exactly one certificate.
func TestEnrollGCPReplayUnderConcurrency(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f, google := gcpFixture(t, st)
		ctx := context.Background()
		ch, err := f.svc.CreateChallenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok := google.Token(t, gcpiittest.Claims{Audience: publicURL + "/v1/enroll?nonce=" + ch.Nonce, ProjectID: "allowed-project"})
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			csr := csrPEM(t, ca.KeyP256)
			wg.Go(func() {
				_, errs[i] = f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodGCP, CSR: csr, Nonce: ch.Nonce, Evidence: gcpEvidence(tok)})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, enroll.ErrNonceUsed) && !errors.Is(err, enroll.ErrReplay):
				t.Errorf("err = %v, want nil, ErrNonceUsed or ErrReplay", err)
			}
		}
		if ok != 1 || f.activeWorkers(t, "gce") != 1 {
			t.Fatalf("%d succeeded, %d workers; want 1 and 1", ok, f.activeWorkers(t, "gce"))
		}
	})
}
