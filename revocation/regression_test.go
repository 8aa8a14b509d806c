package revocation_test

import (
	"context"
	"crypto"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// Bug A: with a clock that is not on a whole second (time.Now in
// production), Status right after Revoke says good.
func TestRegressionStatusRightAfterRevoke(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-a")
		h.clock.Add(500 * time.Millisecond)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		_, s, err := h.svc.Status(ctx, w.serial, nil)
		if err != nil || s.Status != revocation.StatusRevoked {
			t.Errorf("Status right after Revoke: %+v, %v; want revoked", s, err)
		}
		at := h.clock.Now()
		if _, _, err := h.svc.Status(ctx, w.serial, &at); err != nil {
			t.Errorf("Status at the current instant: %v", err)
		}
	})
}

// pausingRevokeLedger holds the first Revoke after it committed.
type pausingRevokeLedger struct {
	*store.Store
	pause              atomic.Bool
	committed, release chan struct{}
}

func (l *pausingRevokeLedger) Revoke(ctx context.Context, r store.Revocation) (*store.RevokeResult, error) {
	res, err := l.Store.Revoke(ctx, r)
	if l.pause.CompareAndSwap(true, false) {
		l.committed <- struct{}{}
		<-l.release
	}
	return res, err
}

// Bug B: a second, concurrent Revoke of the same serial returns
// AlreadyRevoked while OCSP still serves the cached good answer.
func TestRegressionAlreadyRevokedServesCachedGood(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		l := &pausingRevokeLedger{Store: st, committed: make(chan struct{}), release: make(chan struct{})}
		h := newHarness(t, st, func(c *revocation.Config) { c.Ledger = l })
		w := h.enroll(t, "build", "w-b")
		req := ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)
		h.ask(req) // cached good
		l.pause.Store(true)
		done := make(chan error)
		go func() {
			_, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise})
			done <- err
		}()
		<-l.committed
		res, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise})
		if err != nil || len(res.AlreadyRevoked) != 1 {
			t.Fatalf("second Revoke: %+v, %v", res, err)
		}
		r, err := xocsp.ParseResponseForCert(h.ask(req).DER, w.cert, h.h.Intermediate)
		if err != nil || r.Status != xocsp.Revoked {
			t.Errorf("OCSP after Revoke returned AlreadyRevoked: status %v, %v; want revoked", r.Status, err)
		}
		close(l.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Bug C: with the smallest ResponderTTL New accepts (2 x OCSPValidity),
// an answer signed before the renewal is due outlives the responder
// certificate that signed it.
func TestRegressionAnswerOutlivesResponder(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		h := newHarness(t, st, func(c *revocation.Config) { c.ResponderTTL = 2 * testOCSPValidity })
		w := h.enroll(t, "build", "w-c")
		rc := h.svc.ResponderCertificate()
		life := rc.NotAfter.Sub(rc.NotBefore)
		h.clock.Set(rc.NotBefore.Add(life * 2 / 3).Add(-time.Second)) // renewal not yet due
		r, err := xocsp.ParseResponseForCert(h.ask(ocspRequest(t, w.cert, h.h.Intermediate, crypto.SHA256)).DER, w.cert, h.h.Intermediate)
		if err != nil {
			t.Fatal(err)
		}
		if r.NextUpdate.After(rc.NotAfter) {
			t.Errorf("answer valid until %v, its signer's certificate until %v", r.NextUpdate, rc.NotAfter)
		}
	})
}

// Bug D: ParseSerial accepts a leading plus sign.
func TestRegressionParseSerialPlus(t *testing.T) {
	if _, err := revocation.ParseSerial("+ff"); err == nil {
		t.Error(`ParseSerial("+ff") accepted`)
	}
}

// pausingReadLedger holds the first EachRevoked after it read.
type pausingReadLedger struct {
	*store.Store
	pause         atomic.Bool
	read, release chan struct{}
}

func (l *pausingReadLedger) EachRevoked(ctx context.Context, shard int, from time.Time, fn func(store.RevokedEntry) error) error {
	err := l.Store.EachRevoked(ctx, shard, from, fn)
	if l.pause.CompareAndSwap(true, false) {
		l.read <- struct{}{}
		<-l.release
	}
	return err
}

// Bug F: an expired certificate revoked by serial while a CRL build is
// between its ledger read and its clock read never appears on a CRL,
// not even on the one its own revocation triggers.
func TestRegressionExpiredRevocationMissedByConcurrentBuild(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		l := &pausingReadLedger{Store: st, read: make(chan struct{}), release: make(chan struct{})}
		h := newHarness(t, st, func(c *revocation.Config) { c.Ledger = l })
		w := h.enroll(t, "build", "w-f")
		shard := shardOf(w.cert)
		h.clock.Set(w.cert.NotAfter.Add(time.Hour))
		if err := h.svc.Rebuild(ctx, shard); err != nil {
			t.Fatal(err)
		}
		h.run(t)
		l.pause.Store(true)
		built := make(chan error)
		go func() { built <- h.svc.Rebuild(ctx, shard) }()
		<-l.read // the build read the ledger
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(time.Second) // the build reads the clock a moment later
		close(l.release)
		if err := <-built; err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if _, ok := h.crl(t, h.svc, shard).entry(w.cert.SerialNumber); ok {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%s revoked by serial never appeared on a CRL", w.serial)
	})
}
