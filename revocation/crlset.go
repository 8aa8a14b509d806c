package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/store"
)

// CRL is one shard's current CRL as served.
type CRL struct {
	// Shard is the shard number.
	Shard int
	// DER is the signed CRL.
	DER []byte
	// Number is its cRLNumber.
	Number int64
	// ThisUpdate and NextUpdate are its validity.
	ThisUpdate, NextUpdate time.Time
	// ETag is a strong entity tag for HTTP caching (the CRL number).
	ETag string
}

func crlFromStore(c store.CRL) *CRL {
	return &CRL{Shard: c.Shard, DER: c.DER, Number: c.Number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate,
		ETag: `"` + strconv.FormatInt(c.Number, 16) + `"`}
}

// crlSet holds every shard's current CRL and rebuilds them: on a period,
// and at once (in the background) when a revocation touches a shard.
type crlSet struct {
	s       *Service
	mu      sync.RWMutex
	current []*CRL
	// dirty holds, for each shard a revocation touched, the earliest
	// revocation time its next CRL must cover; wake nudges the loop.
	dirtyMu sync.Mutex
	dirty   map[int]time.Time
	wake    chan struct{}
	// buildMu serializes builds.
	buildMu sync.Mutex
}

func newCRLSet(s *Service) *crlSet {
	return &crlSet{s: s, current: make([]*CRL, s.cfg.CRLShards), dirty: map[int]time.Time{}, wake: make(chan struct{}, 1)}
}

// CRL returns the shard's current CRL.
func (s *Service) CRL(shard int) (*CRL, error) {
	if shard < 0 || shard >= s.cfg.CRLShards {
		return nil, fmt.Errorf("%w: shard %d (have 0 to %d)", ErrNoCRL, shard, s.cfg.CRLShards-1)
	}
	s.crls.mu.RLock()
	defer s.crls.mu.RUnlock()
	if c := s.crls.current[shard]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w: shard %d not built yet", ErrNoCRL, shard)
}

// Shards is the number of CRL shards.
func (s *Service) Shards() int { return s.cfg.CRLShards }

// load reads the stored CRLs and builds each shard that has none, or
// whose CRL is due.
func (c *crlSet) load(ctx context.Context) error {
	stored, err := c.s.cfg.Ledger.CRLs(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.mu.Lock()
	for _, st := range stored {
		if st.Shard < len(c.current) {
			c.current[st.Shard] = crlFromStore(st)
		}
	}
	c.mu.Unlock()
	now := c.s.cfg.Clock()
	for shard := range c.s.cfg.CRLShards {
		if c.due(shard, now) {
			if err := c.build(ctx, shard, time.Time{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// due reports whether the shard has no CRL or its rebuild period passed.
func (c *crlSet) due(shard int, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cur := c.current[shard]
	return cur == nil || !now.Before(cur.ThisUpdate.Add(c.s.cfg.CRLRebuild))
}

// touch marks a shard for an immediate rebuild that lists revocations
// from revokedAt on, even of expired certificates: a build that read the
// ledger before this revocation committed may have a later thisUpdate.
func (c *crlSet) touch(shard int, revokedAt time.Time) {
	c.touchLater(shard, revokedAt)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loop rebuilds touched shards at once and every shard when due. A
// failed build is retried on the next tick; the last CRL keeps being
// served (fail soft on status) until its nextUpdate.
func (c *crlSet) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second * 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-tick.C:
		}
		c.dirtyMu.Lock()
		dirty := c.dirty
		c.dirty = map[int]time.Time{}
		c.dirtyMu.Unlock()
		now := c.s.cfg.Clock()
		for shard := range c.s.cfg.CRLShards {
			since, touched := dirty[shard]
			if !touched && !c.due(shard, now) {
				continue
			}
			if err := c.build(ctx, shard, since); err != nil {
				c.s.cfg.Logger.ErrorContext(ctx, "CRL build failed", "shard", shard, "error", err)
				if touched {
					c.touchLater(shard, since)
				}
			}
		}
	}
}

// touchLater re-marks a shard without waking the loop: the next tick
// retries it.
func (c *crlSet) touchLater(shard int, revokedAt time.Time) {
	c.dirtyMu.Lock()
	if t, ok := c.dirty[shard]; !ok || revokedAt.Before(t) {
		c.dirty[shard] = revokedAt
	}
	c.dirtyMu.Unlock()
}

// Rebuild builds the shard's CRL now, for tests and the CLI.
func (s *Service) Rebuild(ctx context.Context, shard int) error {
	if shard < 0 || shard >= s.cfg.CRLShards {
		return fmt.Errorf("%w: shard %d", ErrNoCRL, shard)
	}
	return s.crls.build(ctx, shard, time.Time{})
}

// build signs a new CRL for the shard and saves it, numbered above every
// stored one: max(previous + 1, thisUpdate in Unix milliseconds).
func (c *crlSet) build(ctx context.Context, shard int, since time.Time) error {
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	c.mu.RLock()
	prev := c.current[shard]
	c.mu.RUnlock()
	// Entries stay until one CRL issued after the certificate's notAfter
	// has listed them: this CRL lists everything that had not expired
	// when the previous one was issued, and everything revoked since.
	var from time.Time
	var number int64 = 1
	if prev != nil {
		from = prev.ThisUpdate
		if !since.IsZero() && since.Before(from) {
			from = since
		}
		number = prev.Number + 1
	}
	var entries []CRLEntry
	err := c.s.cfg.Ledger.EachRevoked(ctx, shard, from, func(e store.RevokedEntry) error {
		serial, ok := new(big.Int).SetString(e.Serial, 16)
		if !ok {
			return fmt.Errorf("revocation: ledger serial %q is not hex", e.Serial)
		}
		if e.CRLShard == nil && ca.CRLShard(serial, c.s.cfg.CRLShards) != shard {
			return nil
		}
		reason := 0
		if e.Reason != nil {
			reason = *e.Reason
		}
		if reason < 0 || reason > 10 || reason == 7 || reason == 8 {
			reason = 0 // not a reason a CRL entry may carry; the revocation stands
		}
		entries = append(entries, CRLEntry{Serial: serial, RevokedAt: e.RevokedAt.Truncate(time.Second), Reason: reason, InvalidityDate: e.InvalidityDate})
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	// thisUpdate is taken after the read, so every entry read was revoked
	// by then; a replica's clock running behind is clamped to it.
	now := c.s.cfg.Clock().UTC().Truncate(time.Second)
	for i := range entries {
		if entries[i].RevokedAt.After(now) {
			entries[i].RevokedAt = now
		}
	}
	number = max(number, now.UnixMilli())
	der, err := BuildCRL(CRLRequest{
		Issuer: c.s.cfg.Issuer, Signer: c.s.cfg.Signer, Number: big.NewInt(number),
		ThisUpdate: now, NextUpdate: now.Add(c.s.cfg.CRLValidity),
		DistributionPoint: ca.CRLShardURL(c.s.cfg.CRLBaseURL, shard), Entries: entries,
	})
	if err != nil {
		return err
	}
	row := store.CRL{Shard: shard, Number: number, ThisUpdate: now, NextUpdate: now.Add(c.s.cfg.CRLValidity), DER: der}
	if err := c.s.cfg.Ledger.SaveCRL(ctx, &row); err != nil {
		if !errors.Is(err, store.ErrStale) {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// Another replica saved a newer CRL: serve that one.
		return c.adoptStored(ctx, shard)
	}
	c.mu.Lock()
	c.current[shard] = crlFromStore(row)
	c.mu.Unlock()
	return nil
}

// adoptStored serves the stored CRL of a shard.
func (c *crlSet) adoptStored(ctx context.Context, shard int) error {
	stored, err := c.s.cfg.Ledger.CRLs(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, st := range stored {
		if st.Shard == shard {
			c.mu.Lock()
			c.current[shard] = crlFromStore(st)
			c.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("%w: shard %d vanished", ErrUnavailable, shard)
}
