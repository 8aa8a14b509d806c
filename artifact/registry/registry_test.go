package registry_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

var _ registry.Ledger = (*store.Store)(nil)

const digest = "35da76919a7d2f7c439af4aac73e229b25884e5047a5fd6a53c71670d2277dcc"

type worker struct {
	key  crypto.Signer
	cert *x509.Certificate
	row  *store.Certificate
}

// enrolled issues a real worker certificate and records its ledger row.
func enrolled(t *testing.T, st *store.Store, h *catest.Hierarchy, name string) worker {
	t.Helper()
	key := catest.Key(t, ca.KeyP256)
	cert := h.Worker(t, key, "builders", name, catest.Epoch, 24*time.Hour)
	row := &store.Certificate{
		Serial: ca.SerialHex(cert.SerialNumber), WorkerID: name, Pool: "builders", SPIFFEID: cert.URIs[0].String(),
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, DER: cert.Raw, IssuedAt: catest.Epoch, RetainUntil: cert.NotAfter.Add(72 * time.Hour),
	}
	if err := st.RecordIssuance(t.Context(), store.Issuance{Certificate: row}); err != nil {
		t.Fatal(err)
	}
	return worker{key: key, cert: cert, row: row}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
		statusKey := catest.Key(t, ca.KeyP256)
		reg, err := registry.New(registry.Config{Ledger: st, ReceiptKey: statusKey, MaxLifetime: 365 * 24 * time.Hour,
			Clock: func() time.Time { return catest.Epoch.Add(90 * time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		w, other := enrolled(t, st, h, "b-1"), enrolled(t, st, h, "b-2")
		jws, err := artifact.Sign(artifact.Signer{Key: w.key, Chain: []*x509.Certificate{w.cert}}, artifact.Payload{SHA256: digest})
		if err != nil {
			t.Fatal(err)
		}
		exp := catest.Epoch.Add(100 * 24 * time.Hour)
		r, err := reg.Register(t.Context(), registry.Request{Signature: jws, ExpiresAt: exp, Caller: w.cert, Worker: w.row})
		if err != nil || !r.Created {
			t.Fatalf("Register = %+v, %v", r, err)
		}
		if !r.Artifact.RegisteredAt.Equal(catest.Epoch.Add(time.Minute + 30*time.Second)) {
			t.Errorf("registered at %s; want the clock truncated to the second", r.Artifact.RegisteredAt)
		}
		row, err := st.Certificate(t.Context(), w.row.Serial)
		if err != nil || !row.RetainUntil.Equal(exp) {
			t.Errorf("retain_until = %v (%v), want raised to %s", row.RetainUntil, err, exp)
		}
		if got, err := reg.Lookup(t.Context(), digest); err != nil || len(got) != 1 || got[0].Receipt != r.Artifact.Receipt {
			t.Errorf("Lookup = %+v, %v", got, err)
		}

		for _, tc := range []struct {
			name string
			req  registry.Request
			want error
		}{
			{"fail/signer-not-caller", registry.Request{Signature: jws, ExpiresAt: exp, Caller: other.cert, Worker: other.row}, registry.ErrNotCaller},
			{"fail/expiry-now", registry.Request{Signature: jws, ExpiresAt: catest.Epoch.Add(90 * time.Second), Caller: w.cert, Worker: w.row}, registry.ErrInvalid},
			{"fail/expiry-beyond-max", registry.Request{Signature: jws, ExpiresAt: catest.Epoch.Add(366 * 24 * time.Hour), Caller: w.cert, Worker: w.row}, registry.ErrInvalid},
			{"fail/garbage", registry.Request{Signature: "x.y.z", ExpiresAt: exp, Caller: w.cert, Worker: w.row}, artifact.ErrMalformed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := reg.Register(t.Context(), tc.req); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		if _, err := reg.Lookup(t.Context(), "ABC"); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("lookup bad digest: %v", err)
		}
		if _, err := reg.Lookup(t.Context(), digest[:63]+"0"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("lookup unknown digest: %v", err)
		}
	})
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, store.DriverSQLite)
	for _, tc := range []struct {
		name string
		cfg  registry.Config
	}{
		{"fail/no-ledger", registry.Config{ReceiptKey: catest.Key(t, ca.KeyP256)}},
		{"fail/no-key", registry.Config{Ledger: st}},
		{"fail/weak-key", registry.Config{Ledger: st, ReceiptKey: catest.WeakKey(t, "rsa1024")}},
		{"fail/negative-lifetime", registry.Config{Ledger: st, ReceiptKey: catest.Key(t, ca.KeyP256), MaxLifetime: -time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := registry.New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
