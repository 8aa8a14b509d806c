package revocation

import (
	"context"
	"time"

	"github.com/workerca/workerca/store"
)

// SharedLedger is the optional part of a Ledger that several replicas
// share. *store.Store implements it: over PostgreSQL with LISTEN/NOTIFY
// and an advisory lock; over SQLite, which one process uses, with nothing
// to listen to and a lock in the process. With it, Run applies the other
// replicas' revocations and elects the one replica that builds the CRLs;
// without it, a Service works alone: it builds every CRL and knows only
// of its own revocations.
type SharedLedger interface {
	// ListenRevocations calls fn with each notice of the replicas'
	// revocations and stored CRLs, in order, until ctx is done,
	// reconnecting as needed; after each (re)connect the first notice
	// says Resync.
	ListenRevocations(ctx context.Context, fn func(store.RevocationNotice)) error
	// TryLease takes the named lease without waiting; ok is false when
	// another holder has it. The holder of CRLLeaseName builds the CRLs.
	TryLease(ctx context.Context, name string) (lease *store.Lease, ok bool, err error)
	// RevokedShards returns the shards of the certificates revoked at or
	// after since, and whether some of those have no recorded shard.
	RevokedShards(ctx context.Context, since time.Time) (shards []int, unsharded bool, err error)
}

// CRLLeaseName is the lease whose holder builds the CRLs.
const CRLLeaseName = "workerca.crl"

// leaseTimeout bounds taking and checking the CRL lease.
const leaseTimeout = 10 * time.Second

// hear applies a notice from the ledger: the cached OCSP answers of the
// serials revoked are dropped (under the epoch guard, so that an answer
// being signed from an older ledger read is not cached), their shards
// are touched, and CRLs stored elsewhere are noted for adoption. Resync
// drops every cached answer and catches the CRLs up. Notices of this
// replica's own revocations do no harm: their answers are dropped twice.
func (s *Service) hear(n store.RevocationNotice) {
	if n.Resync {
		s.ocsp.forgetAll()
		s.crls.resyncLater()
	}
	if len(n.Serials) > 0 {
		serials := make([]string, 0, len(n.Serials))
		for _, e := range n.Serials {
			serials = append(serials, e.Serial)
			s.crls.touchLater(s.shardOf(e.Serial, e.Shard), e.RevokedAt)
		}
		s.ocsp.forget(serials...)
	}
	for _, c := range n.CRLs {
		s.crls.savedLater(c.Shard, c.Number)
	}
	s.crls.nudge()
}

// listen runs the SharedLedger's listener, if the ledger is one, until
// ctx is done.
func (s *Service) listen(ctx context.Context) {
	l, ok := s.cfg.Ledger.(SharedLedger)
	if !ok {
		return
	}
	if err := l.ListenRevocations(ctx, s.hear); err != nil && ctx.Err() == nil {
		s.cfg.Logger.ErrorContext(ctx, "revocation listener stopped: other replicas' revocations reach this one's OCSP answers only when they are re-signed", "error", err)
	}
}

// election holds, or tries to take, the CRL lease for the CRL loop. The
// lease is kept for as long as the loop runs, and checked at each tick: a
// stable builder, and a full catch-up only when the builder changes.
type election struct {
	s *Service
	// shared is the Ledger as a SharedLedger; nil makes this replica the
	// builder.
	shared SharedLedger
	lease  *store.Lease
}

// lead says whether this replica is the builder, and whether it has just
// become it. With check (at each tick) it checks a held lease, or tries
// to take the lease; otherwise it answers from what it holds.
func (e *election) lead(ctx context.Context, check bool) (builder, gained bool) {
	if e.shared == nil {
		return true, false
	}
	if !check {
		return e.lease != nil, false
	}
	log := e.s.cfg.Logger
	if e.lease != nil {
		cctx, cancel := context.WithTimeout(ctx, leaseTimeout)
		err := e.lease.Check(cctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return true, false
		}
		log.WarnContext(ctx, "CRL builder lease lost; standing down", "error", err)
		e.release()
	}
	cctx, cancel := context.WithTimeout(ctx, leaseTimeout)
	lease, ok, err := e.shared.TryLease(cctx, CRLLeaseName)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "CRL builder election failed; serving the stored CRLs", "error", err)
		}
		return false, false
	}
	if !ok {
		return false, false
	}
	e.lease = lease
	log.InfoContext(ctx, "this replica builds the CRLs")
	return true, true
}

// release gives the lease up, if held.
func (e *election) release() {
	if e.lease != nil {
		e.lease.Release()
		e.lease = nil
	}
}
