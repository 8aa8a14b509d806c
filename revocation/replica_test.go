package revocation_test

import (
	"context"
	"crypto"
	"fmt"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

var _ revocation.SharedLedger = (*store.Store)(nil)

// replicaWait bounds how long a replica may take to learn of another's
// revocation: a correctness bound (notices arrive in milliseconds; a
// takeover waits for a tick), generous for a loaded database server.
const replicaWait = 15 * time.Second

// replica makes and starts another Service, as another replica would
// be, over ledger (a store on the harness's database).
func (h *harness) replica(t *testing.T, ledger revocation.Ledger) *revocation.Service {
	t.Helper()
	cfg := h.cfg
	cfg.Ledger = ledger
	svc, err := revocation.New(cfg)
	if err != nil {
		t.Fatalf("revocation.New: %v", err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return svc
}

// runService runs svc's background loops until stop is called or the
// test ends.
func runService(t *testing.T, svc *revocation.Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// ocspStatus asks svc about w (SHA-256 CertID) and returns the answer and
// its status.
func (h *harness) ocspStatus(t *testing.T, svc *revocation.Service, w issued) (*revocation.OCSPAnswer, int) {
	t.Helper()
	a := svc.OCSP(context.Background(), ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256))
	r, err := xocsp.ParseResponseForCert(a.DER, w.cert, h.h.Intermediate)
	if err != nil {
		t.Fatalf("OCSP answer about %s: %v", w.serial, err)
	}
	return a, r.Status
}

// warm makes svc cache a "good" answer about each certificate, and checks
// it is served from the cache.
func (h *harness) warm(t *testing.T, svc *revocation.Service, ws ...issued) {
	t.Helper()
	for _, w := range ws {
		a, st := h.ocspStatus(t, svc, w)
		if st != xocsp.Good {
			t.Fatalf("%s: status %d, want good", w.serial, st)
		}
		if again, _ := h.ocspStatus(t, svc, w); again != a {
			t.Fatalf("%s: good answer not cached", w.serial)
		}
	}
}

// eventually polls cond until it holds, failing after replicaWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(replicaWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", replicaWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRevoked waits until svc answers revoked about every certificate.
func (h *harness) waitRevoked(t *testing.T, name string, svc *revocation.Service, ws ...issued) {
	t.Helper()
	for _, w := range ws {
		eventually(t, fmt.Sprintf("replica %s still answers good about %s", name, w.serial), func() bool {
			_, st := h.ocspStatus(t, svc, w)
			return st == xocsp.Revoked
		})
	}
}

// waitListed waits until svc's CRLs list every certificate.
func (h *harness) waitListed(t *testing.T, name string, svc *revocation.Service, ws ...issued) {
	t.Helper()
	for _, w := range ws {
		eventually(t, fmt.Sprintf("replica %s's CRL %d does not list %s", name, shardOf(w.cert), w.serial), func() bool {
			_, ok := h.crl(t, svc, shardOf(w.cert)).entry(w.cert.SerialNumber)
			return ok
		})
	}
}

// waitLeased waits until some replica holds the CRL lease, trying it
// from st.
func waitLeased(t *testing.T, st *store.Store) {
	t.Helper()
	eventually(t, "no replica took the CRL lease", func() bool {
		l, ok, err := st.TryLease(context.Background(), revocation.CRLLeaseName)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			l.Release()
		}
		return !ok
	})
}

// TestReplicas runs two replicas, A and B, each a Service over its own
// Store on one PostgreSQL schema. A is elected to build the CRLs. A
// revocation through either reaches the other's OCSP answers (cached
// "good" ones are dropped) and both replicas' CRLs; so does one made
// while the listeners' connections are down, and one of 300 certificates
// at once. When A stops, B takes over building; when B's lease
// connection is lost, B takes the lease again.
func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := storetest.Config(t, store.DriverPostgres)
	stA := storetest.OpenConfig(t, cfg)
	ledgerB := &pausingLedger{Store: storetest.OpenConfig(t, cfg), read: make(chan struct{}), release: make(chan struct{})}
	// A tick of 2 s, so a takeover takes seconds; the test clock stands
	// still, so no CRL falls due.
	h := newHarness(t, stA, func(c *revocation.Config) { c.CRLRebuild = 2 * time.Second })
	a := h.svc
	stopA := runService(t, a)
	waitLeased(t, ledgerB.Store)
	b := h.replica(t, ledgerB)
	runService(t, b)
	revoke := func(t *testing.T, svc *revocation.Service, req revocation.Request) {
		t.Helper()
		req.Reason = revocation.KeyCompromise
		if _, err := svc.Revoke(ctx, req); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}

	// Wait for both listeners to say their first Resync (which drops
	// every cached answer), so that answers cached from here on stay
	// until a revocation drops them: a replica lists another's
	// revocation only once it hears of it, and a Resync comes first.
	toB, toA := h.enroll(t, "build", "w-settle-b"), h.enroll(t, "build", "w-settle-a")
	revoke(t, a, revocation.Request{Serial: toB.serial})
	revoke(t, b, revocation.Request{Serial: toA.serial})
	h.waitListed(t, "B", b, toB)
	h.waitListed(t, "A", a, toA)

	t.Run("ok/revoked-on-builder-reaches-other", func(t *testing.T) {
		w := h.enroll(t, "build", "w-on-a")
		h.warm(t, a, w)
		h.warm(t, b, w)
		revoke(t, a, revocation.Request{Serial: w.serial})
		h.waitRevoked(t, "B", b, w)
		h.waitListed(t, "B", b, w)
		// B builds nothing: it serves the CRL A stored.
		shard := shardOf(w.cert)
		eventually(t, "B does not serve the CRL A stored", func() bool {
			stored, err := ledgerB.CRLs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return stored[shard].Number == h.crl(t, b, shard).Number && h.crl(t, a, shard).Number == stored[shard].Number
		})
	})

	t.Run("ok/revoked-on-other-reaches-builder", func(t *testing.T) {
		w := h.enroll(t, "build", "w-on-b")
		h.warm(t, a, w)
		revoke(t, b, revocation.Request{Serial: w.serial})
		h.waitRevoked(t, "A", a, w)
		h.waitListed(t, "A", a, w)
		h.waitListed(t, "B", b, w)
	})

	t.Run("ok/notice-racing-a-request-leaves-no-good-cached", func(t *testing.T) {
		// B reads "good" from the ledger, A revokes and B hears of it
		// (B's CRL lists it: the CRL's notice follows the revocation's),
		// and only then does B sign its answer: it may say good, but
		// must not be cached.
		w := h.enroll(t, "build", "w-race")
		ledgerB.pause.Store(true)
		early := make(chan int)
		go func() { _, st := h.ocspStatus(t, b, w); early <- st }()
		<-ledgerB.read
		revoke(t, a, revocation.Request{Serial: w.serial})
		h.waitListed(t, "B", b, w)
		ledgerB.release <- struct{}{}
		if st := <-early; st != xocsp.Good {
			t.Fatalf("the request that read the ledger first: %d, want good", st)
		}
		if _, st := h.ocspStatus(t, b, w); st != xocsp.Revoked {
			t.Fatalf("next request: %d, want revoked (a stale good was cached)", st)
		}
	})

	t.Run("ok/pool-of-300-over-several-notices", func(t *testing.T) {
		var ws []issued
		for i := range 300 {
			ws = append(ws, h.enroll(t, "deploy", fmt.Sprintf("w-pool-%03d", i)))
		}
		h.warm(t, b, ws...)
		res, err := a.Revoke(ctx, revocation.Request{Pool: "deploy", Reason: revocation.CessationOfOperation})
		if err != nil || len(res.Revoked) != len(ws) {
			t.Fatalf("Revoke pool: %v, %d revoked; want %d", err, len(res.Revoked), len(ws))
		}
		h.waitRevoked(t, "B", b, ws...)
		h.waitListed(t, "B", b, ws...)
	})

	t.Run("ok/revoked-while-listeners-down-resyncs", func(t *testing.T) {
		w, next := h.enroll(t, "build", "w-offline"), h.enroll(t, "build", "w-back")
		h.warm(t, b, w, next)
		if n := storetest.TerminateListeners(t, cfg); n != 2 {
			t.Fatalf("ended %d listening connections, want A's and B's", n)
		}
		// Nobody listens now: the notice is lost, B's Resync drops its
		// cache once it is back.
		revoke(t, a, revocation.Request{Serial: w.serial})
		h.waitRevoked(t, "B", b, w)
		h.waitListed(t, "B", b, w)
		// And B listens again.
		h.warm(t, b, next)
		revoke(t, a, revocation.Request{Serial: next.serial})
		h.waitRevoked(t, "B", b, next)
	})

	t.Run("ok/builder-stopped-other-takes-over", func(t *testing.T) {
		stopA()
		w := h.enroll(t, "build", "w-takeover")
		h.warm(t, b, w)
		revoke(t, b, revocation.Request{Serial: w.serial})
		if _, st := h.ocspStatus(t, b, w); st != xocsp.Revoked {
			t.Fatalf("B about its own revocation: %d, want revoked", st)
		}
		h.waitListed(t, "B", b, w)
		waitLeased(t, stA)
	})

	t.Run("ok/builder-lease-lost-reelected", func(t *testing.T) {
		if n := storetest.TerminateLockHolders(t, cfg); n != 1 {
			t.Fatalf("ended %d lease connections, want B's", n)
		}
		w := h.enroll(t, "build", "w-lease-lost")
		// B finds its lease lost at its next tick and takes it again,
		// catching up.
		waitLeased(t, stA)
		revoke(t, b, revocation.Request{Serial: w.serial})
		h.waitListed(t, "B", b, w)
	})

	if errs := h.logs.errors(); len(errs) != 0 {
		t.Errorf("background loops logged errors: %v", errs)
	}
}

// TestCRLOverdueBuiltByNonBuilder: a replica that is not the builder
// serves the stored CRLs, and builds a shard itself only once its CRL is
// halfway from due to expired, as when the builder holds the lease but
// is stuck.
func TestCRLOverdueBuiltByNonBuilder(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		// A tick of a second: CRLRebuild is shorter than crlTick.
		h := newHarness(t, st, func(c *revocation.Config) { c.CRLRebuild = time.Second })
		// The stuck builder: the lease is held, and nobody builds.
		lease, ok, err := st.TryLease(context.Background(), revocation.CRLLeaseName)
		if err != nil || !ok {
			t.Fatalf("TryLease: %v, %v", ok, err)
		}
		t.Cleanup(lease.Release)
		before := h.crl(t, h.svc, 0)
		due := before.ThisUpdate.Add(time.Second)
		halfway := due.Add(before.NextUpdate.Sub(due) / 2)
		h.clock.Set(halfway.Add(-time.Minute))
		h.run(t)

		time.Sleep(2500 * time.Millisecond) // two ticks and more
		if got := h.crl(t, h.svc, 0); got.Number != before.Number {
			t.Fatalf("due but not overdue: the non-builder built CRL %d over %d", got.Number, before.Number)
		}
		overdue := halfway.Truncate(time.Second).Add(time.Second) // CRL times are whole seconds
		h.clock.Set(overdue)
		eventually(t, "overdue CRL not rebuilt by the non-builder", func() bool {
			return h.crl(t, h.svc, 0).Number > before.Number
		})
		if got := h.crl(t, h.svc, 0); !got.ThisUpdate.Equal(overdue) {
			t.Errorf("rebuilt CRL's thisUpdate %v, want %v", got.ThisUpdate, overdue)
		}
	})
}
