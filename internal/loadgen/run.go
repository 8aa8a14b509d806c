package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig reports a Config that Run refuses.
var ErrInvalidConfig = errors.New("loadgen: invalid config")

// Why a run stopped (Report.Stopped).
const (
	StoppedCount    = "count"
	StoppedDuration = "duration"
	StoppedCanceled = "canceled"
)

// Config is one load run.
type Config struct {
	// Mode names the run in the report ("ocsp", "issue").
	Mode string
	// Clients is how many requests are in flight at once: each client
	// makes one request at a time. At least 1.
	Clients int
	// Count stops the run after this many requests in all; 0 means no
	// count.
	Count int
	// Duration stops the run once it has lasted this long: no request
	// starts after it, and those in flight finish. 0 means no duration.
	// At least one of Count and Duration must be set; with both, the
	// first reached stops the run.
	Duration time.Duration
	// Op makes one request; nil is success, an error is a failure counted
	// under Code(err). Op is called from Clients goroutines at once.
	// Required.
	Op func(ctx context.Context, c Call) error
	// Clock reads the time for latencies and the duration; nil means
	// time.Now.
	Clock func() time.Time
}

// Call identifies one request to Op.
type Call struct {
	// Client is the index of the client making the request, from 0 to
	// Clients-1. A client makes one request at a time, so state indexed
	// by Client needs no lock.
	Client int
	// Seq numbers the requests of the run from 0 in the order they start;
	// with Count set it is below Count. Each Seq is used once.
	Seq int
}

func (c *Config) check() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("%w: clients must be at least 1, got %d", ErrInvalidConfig, c.Clients)
	case c.Count < 0 || c.Duration < 0:
		return fmt.Errorf("%w: count and duration must not be negative", ErrInvalidConfig)
	case c.Count == 0 && c.Duration == 0:
		return fmt.Errorf("%w: a count or a duration is required", ErrInvalidConfig)
	case c.Op == nil:
		return fmt.Errorf("%w: no Op", ErrInvalidConfig)
	}
	return nil
}

// run is one Run in progress: what its clients share.
type run struct {
	cfg      *Config
	clock    func() time.Time
	deadline time.Time
	// next is the Seq of the next request to start.
	next atomic.Int64
}

// client is one client's results; only its goroutine writes them until
// the run ends.
type client struct {
	hist    *Histogram
	ok      int64
	errs    map[string]int64
	samples map[string]string
}

// Run runs cfg until its count or duration is reached or ctx is done,
// and reports. Cancellation is not an error: the report covers the
// requests that completed and says Stopped "canceled"; requests that
// failed because ctx was done are not counted.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}
	clients := make([]client, cfg.Clients)
	for i := range clients {
		clients[i] = client{hist: NewHistogram(), errs: map[string]int64{}, samples: map[string]string{}}
	}
	var wg sync.WaitGroup
	start := clock()
	r := &run{cfg: &cfg, clock: clock, deadline: start.Add(cfg.Duration)}
	for i := range clients {
		c := &clients[i]
		wg.Go(func() { r.client(ctx, i, c) })
	}
	wg.Wait()
	elapsed := clock().Sub(start)

	stopped := StoppedDuration
	switch {
	case ctx.Err() != nil:
		stopped = StoppedCanceled
	case cfg.Count > 0 && r.next.Load() >= int64(cfg.Count):
		stopped = StoppedCount
	}
	rep := &Report{Mode: cfg.Mode, Clients: cfg.Clients, Stopped: stopped, Elapsed: elapsed, Latency: NewHistogram(),
		ErrorsByCode: map[string]int64{}}
	for i := range clients {
		c := &clients[i]
		rep.Latency.Merge(c.hist)
		rep.OK += c.ok
		for code, n := range c.errs {
			rep.ErrorsByCode[code] += n
			rep.Errors += n
			if _, ok := rep.ErrorSamples[code]; !ok {
				if rep.ErrorSamples == nil {
					rep.ErrorSamples = map[string]string{}
				}
				rep.ErrorSamples[code] = c.samples[code]
			}
		}
	}
	rep.update()
	return rep, nil
}

// client makes client id's requests, one at a time, into c until the run
// ends.
func (r *run) client(ctx context.Context, id int, c *client) {
	cfg := r.cfg
	now := r.clock()
	for {
		if ctx.Err() != nil || (cfg.Duration > 0 && !now.Before(r.deadline)) {
			return
		}
		seq := r.next.Add(1) - 1
		if cfg.Count > 0 && seq >= int64(cfg.Count) {
			return
		}
		err := cfg.Op(ctx, Call{Client: id, Seq: int(seq)})
		end := r.clock()
		if err != nil && ctx.Err() != nil {
			return // canceled, not a result
		}
		c.hist.Record(end.Sub(now))
		if err == nil {
			c.ok++
		} else {
			code := Code(err)
			c.errs[code]++
			if _, ok := c.samples[code]; !ok {
				c.samples[code] = err.Error()
			}
		}
		now = end
	}
}

// Error is a failed request with a stable code for the report
// ("wrong_status", "http_503").
type Error struct {
	// Code is a short snake_case name for the kind of failure.
	Code string
	// Err is the detail; it may be nil.
	Err error
}

// Error returns the code, then the detail if there is one.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code
	}
	return e.Code + ": " + e.Err.Error()
}

// Unwrap returns the detail.
func (e *Error) Unwrap() error { return e.Err }

// Fail returns an *Error with code and detail err (which may be nil).
func Fail(code string, err error) error {
	return &Error{Code: code, Err: err}
}

// Code is the report code of err: the Code of the first *Error in its
// chain; else "timeout" for an error that says it is a timeout
// (context.DeadlineExceeded, net.Error); else "error". Code(nil) is "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	var t interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout()) {
		return "timeout"
	}
	return "error"
}
