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

// crlSet holds every shard's current CRL and keeps them fresh. The
// replica elected builder (see election) rebuilds them on a period, and
// at once (in the background) when a revocation touches a shard; the
// others serve what it stores in the ledger.
type crlSet struct {
	s       *Service
	mu      sync.RWMutex
	current []*CRL
	// Under dirtyMu, what the loop's next pass has to do: dirty holds,
	// for each shard a revocation touched, the earliest revocation time
	// its next CRL must cover; saved, the highest CRL number another
	// replica reported storing per shard; resync, that notices may have
	// been missed. wake nudges the loop.
	dirtyMu sync.Mutex
	dirty   map[int]time.Time
	saved   map[int]int64
	resync  bool
	wake    chan struct{}
	// buildMu serializes builds.
	buildMu sync.Mutex
}

func newCRLSet(s *Service) *crlSet {
	return &crlSet{s: s, current: make([]*CRL, s.cfg.CRLShards), dirty: map[int]time.Time{}, saved: map[int]int64{},
		wake: make(chan struct{}, 1)}
}

// crlTick is the longest time between two passes of the CRL loop, which
// rebuild due CRLs, adopt stored ones and hold the election; a
// CRLRebuild below it shortens it.
const crlTick = 10 * time.Second

// catchUpLookback is how long before a CRL's thisUpdate a catch-up looks
// for revocations the CRL may lack: more than a CRL build's ledger read
// takes plus the clock skew between replicas.
const catchUpLookback = 5 * time.Minute

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

// overdue reports whether the shard's CRL is halfway from due to its
// nextUpdate: the builder is failing, and a replica that is not the
// builder builds the shard itself rather than let its CRL expire.
func (c *crlSet) overdue(shard int, now time.Time) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cur := c.current[shard]
	if cur == nil {
		return true
	}
	due := cur.ThisUpdate.Add(c.s.cfg.CRLRebuild)
	return !now.Before(due.Add(cur.NextUpdate.Sub(due) / 2))
}

// number is the CRL number the shard serves, 0 for none.
func (c *crlSet) number(shard int) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if shard < 0 || shard >= len(c.current) || c.current[shard] == nil {
		return 0
	}
	return c.current[shard].Number
}

// touch marks a shard for an immediate rebuild that lists revocations
// from revokedAt on, even of expired certificates: a build that read the
// ledger before this revocation committed may have a later thisUpdate.
func (c *crlSet) touch(shard int, revokedAt time.Time) {
	c.touchLater(shard, revokedAt)
	c.nudge()
}

// nudge wakes the loop for a pass.
func (c *crlSet) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loop keeps the CRLs fresh: it makes a pass at once, then at every
// nudge and tick, until ctx is done.
func (c *crlSet) loop(ctx context.Context) {
	tick := time.NewTicker(min(crlTick, c.s.cfg.CRLRebuild))
	defer tick.Stop()
	el := &election{s: c.s}
	el.shared, _ = c.s.cfg.Ledger.(SharedLedger)
	defer el.release()
	ticked := true
	for {
		builder, gained := el.lead(ctx, ticked)
		c.pass(ctx, builder, gained, ticked)
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			ticked = false
		case <-tick.C:
			ticked = true
		}
	}
}

// pass is one round of the loop. The builder catches up when it has just
// been elected or may have missed notices, then rebuilds touched shards
// and due ones. Any replica adopts the newer CRLs others report storing;
// one that is not the builder drops touches (the builder hears of them
// too), adopts every stored CRL after missing notices, checks the ledger
// for due shards at each tick, and builds a shard only when overdue. A
// failed build is retried on the next tick; the last CRL keeps being
// served (fail soft on status) until its nextUpdate.
func (c *crlSet) pass(ctx context.Context, builder, gained, ticked bool) {
	c.dirtyMu.Lock()
	dirty, saved, resync := c.dirty, c.saved, c.resync
	c.dirty, c.saved, c.resync = map[int]time.Time{}, map[int]int64{}, false
	c.dirtyMu.Unlock()
	now := c.s.cfg.Clock()
	failed := func(msg string, args ...any) {
		if ctx.Err() == nil { // not merely shutting down
			c.s.cfg.Logger.ErrorContext(ctx, msg, args...)
		}
	}

	if builder && (gained || resync) {
		if err := c.catchUp(ctx, dirty); err != nil {
			failed("CRL catch-up failed", "error", err)
			c.resyncLater()
		}
	}
	adopt := map[int]bool{}
	for shard, n := range saved {
		if c.number(shard) < n {
			adopt[shard] = true
		}
	}
	if !builder && (resync || ticked) {
		for shard := range c.s.cfg.CRLShards {
			if resync || c.due(shard, now) {
				adopt[shard] = true
			}
		}
	}
	if len(adopt) > 0 {
		if err := c.adoptNewer(ctx, adopt); err != nil {
			failed("CRL adoption failed", "error", err)
		}
	}
	for shard := range c.s.cfg.CRLShards {
		since, touched := dirty[shard]
		if builder && !touched && !c.due(shard, now) || !builder && !c.overdue(shard, now) {
			continue
		}
		if err := c.build(ctx, shard, since); err != nil {
			failed("CRL build failed", "shard", shard, "error", err)
			if builder && touched {
				c.touchLater(shard, since)
			}
		}
	}
}

// catchUp marks for rebuilding the shards with revocations this replica
// may not have been told of, because it has just been elected builder or
// its ledger listener reconnected. It first adopts the newer CRLs others
// stored, then marks each shard with a certificate revoked since
// catchUpLookback before its CRL's thisUpdate, to list revocations from
// then on. A shard with no CRL is due anyway.
func (c *crlSet) catchUp(ctx context.Context, dirty map[int]time.Time) error {
	shared, ok := c.s.cfg.Ledger.(SharedLedger)
	if !ok {
		return nil // alone: nothing to catch up with
	}
	all := make(map[int]bool, c.s.cfg.CRLShards)
	for shard := range c.s.cfg.CRLShards {
		all[shard] = true
	}
	if err := c.adoptNewer(ctx, all); err != nil {
		return err
	}
	from := map[int]time.Time{}
	var since time.Time
	c.mu.RLock()
	for shard, cur := range c.current {
		if cur == nil {
			continue
		}
		f := cur.ThisUpdate.Add(-catchUpLookback)
		from[shard] = f
		if since.IsZero() || f.Before(since) {
			since = f
		}
	}
	c.mu.RUnlock()
	if since.IsZero() {
		return nil
	}
	shards, unsharded, err := shared.RevokedShards(ctx, since)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if unsharded {
		shards = shards[:0]
		for shard := range c.s.cfg.CRLShards {
			shards = append(shards, shard)
		}
	}
	for _, shard := range shards {
		f, ok := from[shard]
		if !ok {
			continue
		}
		if t, ok := dirty[shard]; !ok || f.Before(t) {
			dirty[shard] = f
		}
	}
	return nil
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

// savedLater records that another replica stored CRL number n of the
// shard, for the next pass to adopt.
func (c *crlSet) savedLater(shard int, n int64) {
	c.dirtyMu.Lock()
	if n > c.saved[shard] {
		c.saved[shard] = n
	}
	c.dirtyMu.Unlock()
}

// resyncLater records that notices may have been missed, for the next
// pass to catch up (builder) or adopt every stored CRL (the others).
func (c *crlSet) resyncLater() {
	c.dirtyMu.Lock()
	c.resync = true
	c.dirtyMu.Unlock()
}

// build signs a new CRL for the shard and saves it, numbered above every
// stored one: max(previous + 1, thisUpdate in Unix milliseconds). When
// another replica stored a newer CRL first, it serves that one; and when
// since is set (a revocation touched the shard), it builds once more on
// top of it, as that CRL may have been built from a ledger read made
// before the revocation.
func (c *crlSet) build(ctx context.Context, shard int, since time.Time) error {
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	for attempt := 0; ; attempt++ {
		err := c.buildOnce(ctx, shard, since)
		if !errors.Is(err, store.ErrStale) {
			return err
		}
		// Another replica saved a newer CRL: serve that one.
		if err := c.adoptStored(ctx, shard); err != nil {
			return err
		}
		if since.IsZero() || attempt > 0 {
			return nil
		}
	}
}

// buildOnce is one attempt of build; it returns store.ErrStale as it is.
func (c *crlSet) buildOnce(ctx context.Context, shard int, since time.Time) error {
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
		if e.Reason != nil && completeCRLReason(*e.Reason) {
			reason = *e.Reason // any other is not a reason a CRL entry may carry; the revocation stands
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
		if errors.Is(err, store.ErrStale) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c.serve(row)
	return nil
}

// serve makes a stored CRL the shard's current one, unless the shard
// serves a newer one already.
func (c *crlSet) serve(st store.CRL) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Shard < 0 || st.Shard >= len(c.current) {
		return
	}
	if cur := c.current[st.Shard]; cur == nil || st.Number > cur.Number {
		c.current[st.Shard] = crlFromStore(st)
	}
}

// adoptStored serves the stored CRL of a shard.
func (c *crlSet) adoptStored(ctx context.Context, shard int) error {
	stored, err := c.s.cfg.Ledger.CRLs(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, st := range stored {
		if st.Shard == shard {
			c.serve(st)
			return nil
		}
	}
	return fmt.Errorf("%w: shard %d vanished", ErrUnavailable, shard)
}

// adoptNewer serves the stored CRLs of the shards, where newer than
// those served.
func (c *crlSet) adoptNewer(ctx context.Context, shards map[int]bool) error {
	stored, err := c.s.cfg.Ledger.CRLs(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, st := range stored {
		if shards[st.Shard] {
			c.serve(st)
		}
	}
	return nil
}
