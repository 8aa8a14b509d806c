// Package retention runs the ledger's pruning: on a period, on one
// replica at a time (a PostgreSQL advisory lock; on SQLite the process is
// alone), it deletes expired artifact registrations, certificates past
// their retain_until (revoked ones only after a CRL issued past their
// notAfter), and expired challenges, in small batches that never hold
// long locks. `workerca prune` runs the same pass by hand.
//
//	p, _ := retention.New(retention.Config{Store: st, Registerer: reg})
//	go p.Run(ctx)
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/workerca/workerca/store"
)

// Store is what pruning needs from storage.
type Store interface {
	Prune(ctx context.Context, o store.PruneOptions) (*store.PruneResult, error)
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// LockName is the name of the lock a pruning pass holds.
const LockName = "workerca.prune"

// DefaultInterval is how often Run prunes.
const DefaultInterval = 10 * time.Minute

// ErrLocked means another replica is pruning now.
var ErrLocked = errors.New("retention: another replica holds the prune lock")

// Config wires a Pruner.
type Config struct {
	// Store is the ledger. Required.
	Store Store
	// Interval is the time between passes of Run; 0 means
	// DefaultInterval.
	Interval time.Duration
	// BatchSize is the rows per delete statement; 0 means
	// store.DefaultPruneBatch.
	BatchSize int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Logger receives a line per pass that deleted something, and
	// failures; nil means discard.
	Logger *slog.Logger
	// Registerer receives the pruner's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Pruner prunes the ledger.
type Pruner struct {
	cfg     Config
	deleted *prometheus.CounterVec
	runs    *prometheus.CounterVec
	last    prometheus.Gauge
}

// New checks cfg and returns a Pruner, registering its metrics.
func New(cfg Config) (*Pruner, error) {
	if cfg.Store == nil {
		return nil, errors.New("retention: store is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < 0 || cfg.BatchSize < 0 {
		return nil, errors.New("retention: interval and batch size must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pruner{
		cfg: cfg,
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerca_pruned_rows_total",
			Help: "Ledger rows deleted by retention pruning, by table.",
		}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerca_prune_runs_total",
			Help: "Pruning passes by outcome: ok, locked (another replica pruned) or error.",
		}, []string{"outcome"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "workerca_prune_last_success_timestamp_seconds",
			Help: "Unix time of the last pruning pass that completed.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.deleted, p.runs, p.last} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("retention: metrics: %w", err)
			}
		}
	}
	return p, nil
}

// Once runs one pass under the prune lock: ErrLocked when another
// replica holds it. With dryRun it counts and deletes nothing.
func (p *Pruner) Once(ctx context.Context, dryRun bool, actor string) (*store.PruneResult, error) {
	unlock, ok, err := p.cfg.Store.TryLock(ctx, LockName)
	if err != nil {
		p.runs.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("retention: lock: %w", err)
	}
	if !ok {
		p.runs.WithLabelValues("locked").Inc()
		return nil, ErrLocked
	}
	defer unlock()
	now := p.cfg.Clock()
	res, err := p.cfg.Store.Prune(ctx, store.PruneOptions{Now: now, BatchSize: p.cfg.BatchSize, DryRun: dryRun, Actor: actor})
	if err != nil {
		p.runs.WithLabelValues("error").Inc()
		return res, fmt.Errorf("retention: %w", err)
	}
	p.runs.WithLabelValues("ok").Inc()
	if !dryRun {
		p.deleted.WithLabelValues("certificates").Add(float64(res.Certificates))
		p.deleted.WithLabelValues("artifacts").Add(float64(res.Artifacts))
		p.deleted.WithLabelValues("challenges").Add(float64(res.Challenges))
		p.deleted.WithLabelValues("tpm_sessions").Add(float64(res.TPMSessions))
		p.last.Set(float64(now.Unix()))
	}
	return res, nil
}

// Run prunes every Interval until ctx is done. Failures are logged and
// retried at the next interval; nothing is lost by a failed pass.
func (p *Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		res, err := p.Once(ctx, false, "system")
		switch {
		case errors.Is(err, ErrLocked):
			p.cfg.Logger.DebugContext(ctx, "prune skipped: another replica holds the lock")
		case err != nil && ctx.Err() == nil:
			p.cfg.Logger.ErrorContext(ctx, "prune failed", "error", err)
		case err == nil && res.Batches > 0: // a batch counts only when it deleted rows
			p.cfg.Logger.InfoContext(ctx, "pruned", "certificates", res.Certificates, "artifacts", res.Artifacts,
				"challenges", res.Challenges, "tpm_sessions", res.TPMSessions, "batches", res.Batches)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
