package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is what a run measured. Its JSON form is the machine-readable
// output of `workerca bench --json`: durations are Go duration strings,
// latencies milliseconds.
type Report struct {
	// Mode is Config.Mode.
	Mode string `json:"mode"`
	// Clients is Config.Clients.
	Clients int `json:"clients"`
	// Duration is Elapsed as a string ("20.004s").
	Duration string `json:"duration"`
	// Stopped says what ended the run: StoppedCount, StoppedDuration or
	// StoppedCanceled.
	Stopped string `json:"stopped"`
	// Requests is OK + Errors.
	Requests int64 `json:"requests"`
	// OK counts requests that succeeded.
	OK int64 `json:"ok"`
	// Errors counts requests that failed.
	Errors int64 `json:"errors"`
	// ErrorsByCode splits Errors by Code.
	ErrorsByCode map[string]int64 `json:"errors_by_code"`
	// ErrorSamples holds the first error message seen for each code.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// ThroughputPerS is OK per second of Elapsed.
	ThroughputPerS float64 `json:"throughput_per_s"`
	// MeanMs, P50Ms, P90Ms, P99Ms and MaxMs describe the latency of every
	// request, failed ones included, in milliseconds. Percentiles are
	// within 0.8 % (see Histogram); mean and max are exact.
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`

	// Elapsed is the wall time of the run, from before the first request
	// to after the last.
	Elapsed time.Duration `json:"-"`
	// Latency holds every request's latency.
	Latency *Histogram `json:"-"`
}

// update derives the summary fields from the counters and Latency.
func (r *Report) update() {
	r.Requests = r.OK + r.Errors
	r.Duration = r.Elapsed.Round(time.Millisecond).String()
	if s := r.Elapsed.Seconds(); s > 0 {
		r.ThroughputPerS = math.Round(float64(r.OK)/s*10) / 10
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	r.MeanMs = ms(r.Latency.Mean())
	r.P50Ms = ms(r.Latency.Quantile(0.50))
	r.P90Ms = ms(r.Latency.Quantile(0.90))
	r.P99Ms = ms(r.Latency.Quantile(0.99))
	r.MaxMs = ms(r.Latency.Max())
}

// MarkFailed turns one success into a failure with code, for a check
// made after the run (a returned certificate chain that does not verify,
// say). err's message becomes the code's sample if it has none.
func (r *Report) MarkFailed(code string, err error) {
	if r.OK > 0 {
		r.OK--
	}
	r.Errors++
	if r.ErrorsByCode == nil {
		r.ErrorsByCode = map[string]int64{}
	}
	r.ErrorsByCode[code]++
	if _, ok := r.ErrorSamples[code]; !ok && err != nil {
		if r.ErrorSamples == nil {
			r.ErrorSamples = map[string]string{}
		}
		r.ErrorSamples[code] = err.Error()
	}
	r.update()
}

// WriteText prints the report for people:
//
//	ocsp: 64 clients, 20.003s (stopped: duration)
//	  requests    612345 (ok 612345, errors 0)
//	  throughput  30612.3/s
//	  latency     mean 2.09ms  p50 1.91ms  p90 3.12ms  p99 6.02ms  max 41.3ms
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	clients := "clients"
	if r.Clients == 1 {
		clients = "client"
	}
	fmt.Fprintf(&b, "%s: %d %s, %s (stopped: %s)\n", r.Mode, r.Clients, clients, r.Duration, r.Stopped)
	fmt.Fprintf(&b, "  requests    %d (ok %d, errors %d)\n", r.Requests, r.OK, r.Errors)
	fmt.Fprintf(&b, "  throughput  %.1f/s\n", r.ThroughputPerS)
	fmt.Fprintf(&b, "  latency     mean %s  p50 %s  p90 %s  p99 %s  max %s\n",
		msString(r.MeanMs), msString(r.P50Ms), msString(r.P90Ms), msString(r.P99Ms), msString(r.MaxMs))
	if len(r.ErrorsByCode) > 0 {
		codes := make([]string, 0, len(r.ErrorsByCode))
		for c := range r.ErrorsByCode {
			codes = append(codes, c)
		}
		// Most frequent first, then by name.
		slices.SortFunc(codes, func(a, b string) int {
			if c := cmp.Compare(r.ErrorsByCode[b], r.ErrorsByCode[a]); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		b.WriteString("  errors by code:\n")
		for _, c := range codes {
			fmt.Fprintf(&b, "    %-20s %d", c, r.ErrorsByCode[c])
			if s := r.ErrorSamples[c]; s != "" {
				fmt.Fprintf(&b, "  (first: %s)", s)
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// msString prints milliseconds with three significant digits or more.
func msString(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}
