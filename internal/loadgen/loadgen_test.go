package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerca/workerca/internal/loadgen"
)

// epoch is the fake clocks' starting instant.
var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// clock is a fake clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: epoch} }

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	series := func(n int, unit time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * unit
		}
		return out
	}
	skewed := append(series(99, 0), time.Second)
	for i := range 99 {
		skewed[i] = time.Millisecond
	}
	tests := []struct {
		name   string
		values []time.Duration
		q      []float64
		want   []time.Duration
		// tolerance is the relative error allowed above want (never below).
		tolerance float64
		min, max  time.Duration
		mean      time.Duration
	}{
		{"exact/1-to-100ns", series(100, 1), []float64{0.01, 0.5, 0.9, 0.99, 1}, []time.Duration{1, 50, 90, 99, 100}, 0, 1, 100, 50},
		{"within-1/128/1-to-1000us", series(1000, time.Microsecond), []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1},
			[]time.Duration{time.Microsecond, 500 * time.Microsecond, 900 * time.Microsecond, 990 * time.Microsecond, 999 * time.Microsecond, time.Millisecond},
			1.0 / 128, time.Microsecond, time.Millisecond, 500500 * time.Nanosecond},
		{"exact/one-value-is-every-quantile", []time.Duration{7 * time.Millisecond}, []float64{0.5, 0.99, 1}, []time.Duration{7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond}, 0, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{"within-1/128/one-outlier-only-in-the-top-percent", skewed, []float64{0.5, 0.99, 0.995, 1}, []time.Duration{time.Millisecond, time.Millisecond, time.Second, time.Second}, 1.0 / 128, time.Millisecond, time.Second, (99*time.Millisecond + time.Second) / 100},
		{"exact/negative-counts-as-zero", []time.Duration{-5, 3}, []float64{0.5, 1}, []time.Duration{0, 3}, 0, 0, 3, 1},
		{"empty/all-zero", nil, []float64{0.5, 1}, []time.Duration{0, 0}, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := loadgen.NewHistogram()
			for _, v := range tc.values {
				h.Record(v)
			}
			if h.Count() != uint64(len(tc.values)) {
				t.Errorf("Count = %d, want %d", h.Count(), len(tc.values))
			}
			for i, q := range tc.q {
				got, want := h.Quantile(q), tc.want[i]
				if got < want || float64(got-want) > float64(want)*tc.tolerance {
					t.Errorf("Quantile(%v) = %v, want %v (up to %.2f%% above)", q, got, want, tc.tolerance*100)
				}
			}
			if h.Min() != tc.min || h.Max() != tc.max || h.Mean() != tc.mean {
				t.Errorf("min %v max %v mean %v; want %v %v %v", h.Min(), h.Max(), h.Mean(), tc.min, tc.max, tc.mean)
			}
		})
	}
}

// TestHistogramMerge checks that merging per-client histograms is the
// same as recording everything in one.
func TestHistogramMerge(t *testing.T) {
	t.Parallel()
	all, a, b := loadgen.NewHistogram(), loadgen.NewHistogram(), loadgen.NewHistogram()
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	merged := loadgen.NewHistogram()
	merged.Merge(a)
	merged.Merge(loadgen.NewHistogram()) // an empty one changes nothing
	merged.Merge(b)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 1} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, single %v", q, merged.Quantile(q), all.Quantile(q))
		}
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Errorf("merged count/min/max/mean %d %v %v %v, single %d %v %v %v",
			merged.Count(), merged.Min(), merged.Max(), merged.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
}

// TestRunTermination checks that a run stops at its count or duration,
// whichever comes first, makes every Seq once, and times requests with
// the injected clock.
func TestRunTermination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clients  int
		count    int
		duration time.Duration
		// step is how far each request moves the fake clock; 0 uses the
		// real clock.
		step        time.Duration
		wantN       int64
		wantStopped string
	}{
		{"count/one-client", 1, 10, 0, 0, 10, loadgen.StoppedCount},
		{"count/more-clients-than-requests", 8, 3, 0, 0, 3, loadgen.StoppedCount},
		{"count/many-clients", 16, 5000, 0, 0, 5000, loadgen.StoppedCount},
		{"count/before-duration", 1, 5, time.Hour, 10 * time.Millisecond, 5, loadgen.StoppedCount},
		{"duration/one-client", 1, 0, 100 * time.Millisecond, 10 * time.Millisecond, 10, loadgen.StoppedDuration},
		{"duration/before-count", 1, 1000, time.Second, 100 * time.Millisecond, 10, loadgen.StoppedDuration},
		{"duration/uneven-step", 1, 0, 100 * time.Millisecond, 30 * time.Millisecond, 4, loadgen.StoppedDuration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var clockFn func() time.Time
			c := newClock()
			if tc.step > 0 {
				clockFn = c.Now
			}
			var mu sync.Mutex
			seen := map[int]bool{}
			rep, err := loadgen.Run(t.Context(), loadgen.Config{
				Mode: "test", Clients: tc.clients, Count: tc.count, Duration: tc.duration, Clock: clockFn,
				Op: func(_ context.Context, call loadgen.Call) error {
					if call.Client < 0 || call.Client >= tc.clients {
						return fmt.Errorf("client %d out of range", call.Client)
					}
					mu.Lock()
					dup := seen[call.Seq]
					seen[call.Seq] = true
					mu.Unlock()
					if dup {
						return fmt.Errorf("seq %d made twice", call.Seq)
					}
					c.Add(tc.step)
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != tc.wantN || rep.OK != tc.wantN || rep.Errors != 0 || rep.Stopped != tc.wantStopped {
				t.Fatalf("requests %d ok %d errors %d (%v) stopped %s; want %d ok, stopped %s",
					rep.Requests, rep.OK, rep.Errors, rep.ErrorSamples, rep.Stopped, tc.wantN, tc.wantStopped)
			}
			for i := range int(tc.wantN) {
				if !seen[i] {
					t.Fatalf("seq %d never made; seqs must run from 0", i)
				}
			}
			if rep.Latency.Count() != uint64(tc.wantN) || rep.Clients != tc.clients || rep.Mode != "test" {
				t.Fatalf("latencies %d, clients %d, mode %q", rep.Latency.Count(), rep.Clients, rep.Mode)
			}
			if tc.step > 0 {
				// One client on a fake clock: every latency is one step, and
				// the run lasted wantN steps.
				if rep.Latency.Min() != tc.step || rep.Latency.Max() != tc.step {
					t.Errorf("latencies from %v to %v, want all %v", rep.Latency.Min(), rep.Latency.Max(), tc.step)
				}
				elapsed := time.Duration(tc.wantN) * tc.step
				if rep.Elapsed != elapsed || rep.Duration != elapsed.String() {
					t.Errorf("elapsed %v (%q), want %v", rep.Elapsed, rep.Duration, elapsed)
				}
				if want := math.Round(float64(tc.wantN)/elapsed.Seconds()*10) / 10; rep.ThroughputPerS != want {
					t.Errorf("throughput %v/s, want %v/s", rep.ThroughputPerS, want)
				}
				if want := float64(tc.step) / 1e6; rep.P50Ms != want || rep.P99Ms != want || rep.MaxMs != want {
					t.Errorf("p50 %v p99 %v max %v ms, want %v", rep.P50Ms, rep.P99Ms, rep.MaxMs, want)
				}
			}
		})
	}
}

// timeoutError is a net.Error-like timeout.
type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

// TestRunErrorsByCode checks that failures are counted by code with the
// first message of each, and successes apart.
func TestRunErrorsByCode(t *testing.T) {
	t.Parallel()
	rep, err := loadgen.Run(t.Context(), loadgen.Config{
		Mode: "test", Clients: 4, Count: 100,
		Op: func(_ context.Context, c loadgen.Call) error {
			switch c.Seq % 10 {
			case 0:
				return loadgen.Fail("wrong_status", errors.New("good serial answered revoked"))
			case 1:
				return fmt.Errorf("wrapped: %w", loadgen.Fail("http_503", nil))
			case 2:
				return timeoutError{}
			case 3:
				return errors.New("something else")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"wrong_status": 10, "http_503": 10, "timeout": 10, "error": 10}
	if rep.OK != 60 || rep.Errors != 40 || rep.Requests != 100 || fmt.Sprint(rep.ErrorsByCode) != fmt.Sprint(want) {
		t.Fatalf("ok %d errors %d requests %d by code %v; want 60, 40, 100, %v", rep.OK, rep.Errors, rep.Requests, rep.ErrorsByCode, want)
	}
	if got := rep.ErrorSamples["wrong_status"]; got != "wrong_status: good serial answered revoked" {
		t.Errorf("wrong_status sample %q", got)
	}
	if got := rep.ErrorSamples["http_503"]; got != "wrapped: http_503" {
		t.Errorf("http_503 sample %q", got)
	}
	if rep.Latency.Count() != 100 {
		t.Errorf("%d latencies recorded, want every request's (100)", rep.Latency.Count())
	}

	// A check after the run moves one success to the failures.
	rep.MarkFailed("chain_invalid", errors.New("x509: unknown authority"))
	if rep.OK != 59 || rep.Errors != 41 || rep.Requests != 100 || rep.ErrorsByCode["chain_invalid"] != 1 || rep.ErrorSamples["chain_invalid"] != "x509: unknown authority" {
		t.Fatalf("after MarkFailed: ok %d errors %d requests %d by code %v", rep.OK, rep.Errors, rep.Requests, rep.ErrorsByCode)
	}
	if want := float64(59) / rep.Elapsed.Seconds(); rep.ThroughputPerS < want*0.99 || rep.ThroughputPerS > want*1.01 {
		t.Errorf("throughput %v after MarkFailed, want about %v", rep.ThroughputPerS, want)
	}

	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"test: 4 clients", "requests    100 (ok 59, errors 41)", "throughput", "p50", "p99", "max",
		"wrong_status", "(first: wrong_status: good serial answered revoked)", "chain_invalid"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, out.String())
		}
	}
}

// TestRunCanceled checks that cancellation stops the run, is said in the
// report, and that requests failed by it are not counted as errors.
func TestRunCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var started atomic.Int64
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Mode: "test", Clients: 4, Duration: time.Hour,
		Op: func(ctx context.Context, c loadgen.Call) error {
			started.Add(1)
			if c.Seq == 50 {
				cancel()
			}
			if c.Seq >= 50 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != loadgen.StoppedCanceled || rep.Errors != 0 || rep.OK < 50 || rep.OK >= started.Load() {
		t.Fatalf("stopped %s, ok %d, errors %d (%v), %d started; want canceled, at least 50 ok, no errors",
			rep.Stopped, rep.OK, rep.Errors, rep.ErrorsByCode, started.Load())
	}
}

func TestRunInvalidConfig(t *testing.T) {
	t.Parallel()
	op := func(context.Context, loadgen.Call) error { return nil }
	tests := []struct {
		name string
		cfg  loadgen.Config
	}{
		{"fail/no-clients", loadgen.Config{Count: 1, Op: op}},
		{"fail/negative-clients", loadgen.Config{Clients: -1, Count: 1, Op: op}},
		{"fail/neither-count-nor-duration", loadgen.Config{Clients: 1, Op: op}},
		{"fail/negative-count", loadgen.Config{Clients: 1, Count: -1, Duration: time.Second, Op: op}},
		{"fail/negative-duration", loadgen.Config{Clients: 1, Count: 1, Duration: -time.Second, Op: op}},
		{"fail/no-op", loadgen.Config{Clients: 1, Count: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := loadgen.Run(t.Context(), tc.cfg); !errors.Is(err, loadgen.ErrInvalidConfig) {
				t.Fatalf("Run = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"fail", loadgen.Fail("wrong_status", nil), "wrong_status"},
		{"fail-wrapped", fmt.Errorf("get: %w", loadgen.Fail("http_404", io.EOF)), "http_404"},
		{"deadline", fmt.Errorf("do: %w", context.DeadlineExceeded), "timeout"},
		{"net-timeout", fmt.Errorf("do: %w", timeoutError{}), "timeout"},
		{"fail-wins-over-timeout", loadgen.Fail("tls", timeoutError{}), "tls"},
		{"other", io.ErrUnexpectedEOF, "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := loadgen.Code(tc.err); got != tc.want {
				t.Fatalf("Code(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
	if e := loadgen.Fail("x", io.EOF); !errors.Is(e, io.EOF) || e.Error() != "x: EOF" {
		t.Errorf("Fail(x, EOF) = %q, does not wrap EOF", e)
	}
}

// TestReportJSON checks the machine-readable shape bench --json prints.
func TestReportJSON(t *testing.T) {
	t.Parallel()
	rep, err := loadgen.Run(t.Context(), loadgen.Config{Mode: "test", Clients: 2, Count: 20,
		Op: func(_ context.Context, c loadgen.Call) error {
			if c.Seq == 0 {
				return loadgen.Fail("http_500", nil)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for key, kind := range map[string]string{
		"mode": "string", "clients": "float64", "duration": "string", "stopped": "string", "requests": "float64",
		"ok": "float64", "errors": "float64", "errors_by_code": "map[string]interface {}", "throughput_per_s": "float64",
		"mean_ms": "float64", "p50_ms": "float64", "p90_ms": "float64", "p99_ms": "float64", "max_ms": "float64",
	} {
		if got := fmt.Sprintf("%T", m[key]); got != kind {
			t.Errorf("JSON %s is %s, want %s:\n%s", key, got, kind, b)
		}
	}
	if _, err := time.ParseDuration(m["duration"].(string)); err != nil {
		t.Errorf("duration %q is not a Go duration: %v", m["duration"], err)
	}
	if m["ok"].(float64) != 19 || m["errors"].(float64) != 1 || m["errors_by_code"].(map[string]any)["http_500"].(float64) != 1 {
		t.Errorf("JSON counts: %s", b)
	}
}
