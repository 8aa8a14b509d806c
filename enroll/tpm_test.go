package enroll_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/internal/tpmtest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// tpmService is a registration authority over st whose pools "metal" and
// "lab" accept method tpm under the given EK policies, with a test
// manufacturer's root. These tests need no TPM: what they prove is
// decided before the TPM evidence is read, or after it was checked.
func tpmService(t *testing.T, st *store.Store, clk *clock, metalEK, labEK string) *enroll.Service {
	t.Helper()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	svc, err := enroll.New(enroll.Config{
		Issuer: h.Issuer(t, ca.Config{Clock: clk.Now}), Ledger: st, TrustDomain: "workers.example.com",
		Pools: []enroll.Pool{pool(t, "metal", 0, enroll.MethodTPM), pool(t, "lab", 0, enroll.MethodTPM)}, Clock: clk.Now,
		TPM: &enroll.TPMConfig{
			Roots: tpmattest.NewEKRoots([]*x509.Certificate{tpmtest.NewManufacturer(t).Root}, nil),
			Pools: []enroll.TPMPool{{Pool: "metal", EK: metalEK}, {Pool: "lab", EK: labEK}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// ekPublic is a made-up RSA EK public key (PKIX DER) and its hash.
func ekPublic(t *testing.T) ([]byte, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return der, hex.EncodeToString(sum[:])
}

// TestTPMRegistrationPolicy: a pool whose tpm.ek is "certificate" takes
// no registrations, and an EK registered before its pool became one is
// refused at enrollment, before any TPM evidence is read.
func TestTPMRegistrationPolicy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		clk := &clock{now: catest.Epoch}
		svc := tpmService(t, st, clk, enroll.TPMEKAny, enroll.TPMEKCertificate)
		pub, hash := ekPublic(t)

		if _, err := svc.RegisterTPMEK(ctx, hash, "lab", "", "test"); !errors.Is(err, enroll.ErrMethodNotAllowed) {
			t.Fatalf("register into a certificate-only pool: err = %v, want ErrMethodNotAllowed", err)
		}
		if rows, err := svc.TPMEKs(ctx, ""); err != nil || len(rows) != 0 {
			t.Fatalf("registrations after the refusal: %v, %v; want none", rows, err)
		}

		if _, err := svc.RegisterTPMEK(ctx, hash, "metal", "", "test"); err != nil {
			t.Fatal(err)
		}
		// The operator turns pool metal certificate-only; the registration
		// stays in the ledger but admits nothing.
		svc = tpmService(t, st, clk, enroll.TPMEKCertificate, enroll.TPMEKCertificate)
		_, err := svc.StartTPM(ctx, tpmwire.StartRequest{CSR: string(csrPEM(t, ca.KeyP256)), EK: tpmwire.EK{Public: pub}})
		if !errors.Is(err, enroll.ErrAttestationNotAllowed) || !strings.Contains(err.Error(), "does not admit registered TPM EKs") {
			t.Fatalf("start with an EK registered to a certificate-only pool: err = %v, want ErrAttestationNotAllowed", err)
		}
	})
}

// TestTPMFinishConcurrently: one session finished many times at once
// with its secret gives exactly one certificate; the session is consumed
// in the issuance's transaction, not by the check that reads it.
func TestTPMFinishConcurrently(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		clk := &clock{now: catest.Epoch}
		svc := tpmService(t, st, clk, enroll.TPMEKAny, enroll.TPMEKRegistered)
		_, hash := ekPublic(t)

		// The state StartTPM leaves once the TPM evidence checked out.
		handle := tpmwire.SessionPrefix + strings.Repeat("A", enroll.NonceLength)
		secret := []byte("the activated credential's secret")
		handleSum, secretSum := sha256.Sum256([]byte(handle)), sha256.Sum256(secret)
		if err := st.CreateTPMSession(ctx, &store.TPMSession{
			SessionHash: hex.EncodeToString(handleSum[:]), SecretHash: hex.EncodeToString(secretSum[:]),
			Pool: "metal", WorkerID: enroll.TPMWorkerID(hash), EKSHA256: hash, AKName: "000b00",
			Evidence: `{"ek_sha256":"` + hash + `"}`, CSR: catest.CSR(t, catest.Key(t, ca.KeyP256)),
			CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(tpmwire.SessionTTL),
		}); err != nil {
			t.Fatal(err)
		}

		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = svc.FinishTPM(ctx, tpmwire.FinishRequest{Session: handle, Secret: secret})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, enroll.ErrSessionUsed):
				t.Errorf("err = %v, want nil or ErrSessionUsed", err)
			}
		}
		workers, err := st.CountActiveWorkers(ctx, "metal", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ok != 1 || workers != 1 {
			t.Fatalf("%d finishes succeeded, %d workers recorded; want 1 and 1", ok, workers)
		}
	})
}
