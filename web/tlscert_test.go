package web

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestServerCertificateRenewal: the HTTPS certificate is renewed two
// thirds into its life, recorded in the ledger, and served from then on.
func TestServerCertificateRenewal(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		var mu sync.Mutex
		now := catest.Epoch
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
		p, err := ca.NewProfile(ca.ProfileConfig{Name: "default", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := enroll.New(enroll.Config{Issuer: h.Issuer(t, ca.Config{Clock: clock}), Ledger: st, TrustDomain: "workers.example.com",
			Pools: []enroll.Pool{{Profile: p, Methods: []string{enroll.MethodToken}}}, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		waits := make(chan time.Duration)
		fire := make(chan time.Time)
		m, err := newCertManager(context.Background(), certManagerConfig{
			Issue: svc.IssueServer, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, TTL: 3 * time.Hour, Clock: clock,
			Logger: discardLogger(), After: func(d time.Duration) <-chan time.Time { waits <- d; return fire },
		})
		if err != nil {
			t.Fatal(err)
		}
		first := m.cert.Load().Leaf
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go m.renewLoop(ctx)

		// notBefore is backdated a minute: the lifetime is 3h01m, and two
		// thirds of it fall 2h00m40s after notBefore, 1h59m40s from now.
		wantWait := enroll.RenewAfter(first.NotBefore, first.NotAfter).Sub(catest.Epoch)
		if got := <-waits; got != wantWait || wantWait < 119*time.Minute || wantWait > 121*time.Minute {
			t.Fatalf("first wait %v, want %v (two thirds of the lifetime)", got, wantWait)
		}
		mu.Lock()
		now = now.Add(wantWait)
		mu.Unlock()
		fire <- now
		<-waits // the loop asks for its next wait after renewing
		second := m.cert.Load().Leaf
		if second.SerialNumber.Cmp(first.SerialNumber) == 0 || !second.NotBefore.After(first.NotBefore) {
			t.Fatalf("certificate not renewed: serial %x → %x", first.SerialNumber, second.SerialNumber)
		}
		if cert, err := m.tlsConfig().GetCertificate(nil); err != nil || cert.Leaf != second {
			t.Fatal("the TLS config does not serve the renewed certificate")
		}
		if _, err := st.Certificate(ctx, ca.SerialHex(second.SerialNumber)); err != nil {
			t.Fatalf("renewed server certificate not in the ledger: %v", err)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
