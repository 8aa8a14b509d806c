package enroll_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func tokenEvidence(tok string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"token": tok})
	return b
}

// TestEnrollTokenMethodWithNonce: method token on POST /v1/enroll, with
// and without a nonce; a presented nonce is consumed with the issuance.
func TestEnrollTokenMethodWithNonce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st)
		ctx := context.Background()

		res, err := f.svc.Enroll(ctx, enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Evidence: tokenEvidence(f.token(t, "default", "w-1"))})
		if err != nil {
			t.Fatalf("Enroll without nonce: %v", err)
		}
		if res.SPIFFEID != "spiffe://workers.example.com/worker/default/w-1" {
			t.Fatalf("SPIFFE ID = %s", res.SPIFFEID)
		}

		ch, err := f.svc.CreateChallenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := ch.ExpiresAt.Sub(f.clock.Now()); d != enroll.ChallengeTTL {
			t.Fatalf("challenge lives %v, want %v", d, enroll.ChallengeTTL)
		}
		if len(ch.Nonce) != enroll.NonceLength || strings.Trim(ch.Nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("nonce %q: want %d letters and digits", ch.Nonce, enroll.NonceLength)
		}
		if again, err := f.svc.CreateChallenge(ctx); err != nil || again.Nonce == ch.Nonce {
			t.Fatalf("second nonce %v, %v: want a different one", again, err)
		}
		req := enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Nonce: ch.Nonce, Evidence: tokenEvidence(f.token(t, "default", "w-2"))}
		if _, err := f.svc.Enroll(ctx, req); err != nil {
			t.Fatalf("Enroll with nonce: %v", err)
		}
		req.Evidence = tokenEvidence(f.token(t, "default", "w-3"))
		if _, err := f.svc.Enroll(ctx, req); !errors.Is(err, enroll.ErrNonceUsed) {
			t.Fatalf("second use of the nonce: err = %v, want ErrNonceUsed", err)
		}
	})
}

// TestEnrollRefusals: every refusal of Enroll is its own kind and records
// nothing.
func TestEnrollRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st, pool(t, "default", 0, enroll.MethodToken), pool(t, "other", 0, enroll.MethodToken))
		ctx := context.Background()
		expired, err := f.svc.CreateChallenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(enroll.ChallengeTTL)
		csr := csrPEM(t, ca.KeyP256)
		tests := []struct {
			name string
			req  func(t *testing.T) enroll.EnrollRequest
			want error
		}{
			{"fail/unknown-method", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: "carrier-pigeon", CSR: csr, Evidence: json.RawMessage(`{}`)}
			}, enroll.ErrUnknownMethod},
			{"fail/no-evidence", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr}
			}, enroll.ErrEvidenceMalformed},
			{"fail/evidence-unknown-field", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Evidence: json.RawMessage(`{"tokn":"x"}`)}
			}, enroll.ErrEvidenceMalformed},
			{"fail/evidence-not-an-object", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Evidence: json.RawMessage(`"wct_x"`)}
			}, enroll.ErrEvidenceMalformed},
			{"fail/nonce-malformed", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Nonce: "abc", Evidence: tokenEvidence(f.token(t, "default", "w-n1"))}
			}, enroll.ErrNonceInvalid},
			{"fail/nonce-never-issued", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Nonce: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Evidence: tokenEvidence(f.token(t, "default", "w-n2"))}
			}, enroll.ErrNonceInvalid},
			{"fail/nonce-expired", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Nonce: expired.Nonce, Evidence: tokenEvidence(f.token(t, "default", "w-n3"))}
			}, enroll.ErrNonceExpired},
			{"fail/unknown-pool", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Pool: "nope", Evidence: tokenEvidence(f.token(t, "default", "w-p"))}
			}, enroll.ErrUnknownPool},
			{"fail/token-for-another-pool", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Pool: "other", Evidence: tokenEvidence(f.token(t, "default", "w-o"))}
			}, enroll.ErrTokenInvalid},
			{"fail/token-invalid", func(t *testing.T) enroll.EnrollRequest {
				return enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csr, Evidence: tokenEvidence("wct_nope")}
			}, enroll.ErrTokenInvalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req := tc.req(t)
				before := f.activeWorkers(t, "default")
				_, err := f.svc.Enroll(ctx, req)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if after := f.activeWorkers(t, "default"); after != before {
					t.Fatalf("active workers %d → %d: a refused enrollment recorded a certificate", before, after)
				}
			})
		}
	})
}

// TestConcurrentNonceUseIssuesOnce: one nonce, many enrollments at once
// (each with its own token): exactly one certificate.
func TestConcurrentNonceUseIssuesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st)
		ctx := context.Background()
		ch, err := f.svc.CreateChallenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const n = 12
		reqs := make([]enroll.EnrollRequest, n)
		for i := range reqs {
			reqs[i] = enroll.EnrollRequest{Method: enroll.MethodToken, CSR: csrPEM(t, ca.KeyP256), Nonce: ch.Nonce,
				Evidence: tokenEvidence(f.token(t, "default", fmt.Sprintf("w-%d", i)))}
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range reqs {
			wg.Go(func() { _, errs[i] = f.svc.Enroll(ctx, reqs[i]) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, enroll.ErrNonceUsed):
				t.Errorf("err = %v, want nil or ErrNonceUsed", err)
			}
		}
		if ok != 1 || f.activeWorkers(t, "default") != 1 {
			t.Fatalf("%d enrollments succeeded, %d workers recorded; want 1 and 1", ok, f.activeWorkers(t, "default"))
		}
	})
}

func TestRenewAfter(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := enroll.RenewAfter(nb, nb.Add(3*time.Hour)); !got.Equal(nb.Add(2 * time.Hour)) {
		t.Fatalf("RenewAfter = %v, want two hours in", got)
	}
}

// TestRenewChainCap: renewals carry the original attestation time, and
// past the pool's MaxRenewalChain the worker must attest again.
func TestRenewChainCap(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		p := pool(t, "default", 0, enroll.MethodToken)
		p.MaxRenewalChain = 90 * time.Minute
		f := newFixture(t, st, p)
		ctx := context.Background()
		first, err := f.svc.EnrollToken(ctx, f.token(t, "default", "w-1"), csrPEM(t, ca.KeyP256))
		if err != nil {
			t.Fatal(err)
		}
		renew := func(cert *x509.Certificate, csr []byte) (*enroll.Result, error) {
			row, err := f.svc.CheckWorker(ctx, cert)
			if err != nil {
				return nil, err
			}
			return f.svc.Renew(ctx, enroll.RenewRequest{Worker: row, CSR: csr})
		}
		f.clock.Add(45 * time.Minute)
		second, err := renew(first.Certificate, csrPEM(t, ca.KeyEd25519))
		if err != nil {
			t.Fatalf("renewal within the chain cap: %v", err)
		}
		f.clock.Add(50 * time.Minute) // 95 minutes after attestation; the second certificate is still valid
		if _, err := renew(second.Certificate, csrPEM(t, ca.KeyP256)); !errors.Is(err, enroll.ErrReattestationRequired) {
			t.Fatalf("renewal past the chain cap: err = %v, want ErrReattestationRequired", err)
		}
		f.clock.Add(time.Hour) // the first certificate (1h TTL) has expired
		if _, err := renew(first.Certificate, csrPEM(t, ca.KeyP256)); !errors.Is(err, enroll.ErrCertificateExpired) {
			t.Fatalf("renewal of an expired certificate: err = %v, want ErrCertificateExpired", err)
		}
	})
}
