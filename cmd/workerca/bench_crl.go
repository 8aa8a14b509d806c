package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/loadgen"
	"github.com/workerca/workerca/revocation"
)

// Runtime metrics bench crl reads (runtime/metrics).
const (
	metricHeapObjects = "/memory/classes/heap/objects:bytes"
	metricHeapAllocs  = "/gc/heap/allocs:bytes"
)

// crlOptions are the flags of bench crl.
type crlOptions struct {
	entries, count int
	asJSON         bool
	cpuProfile     string
	clock          func() time.Time
}

// crlReport is the JSON report of bench crl.
type crlReport struct {
	*loadgen.Report
	// Entries is how many revoked certificates the CRL lists.
	Entries int `json:"entries"`
	// CRLBytes is the size of the DER CRL.
	CRLBytes int `json:"crl_bytes"`
	// HeapBeforeBytes is the live heap before the first build: the input
	// entries and the rest of the process.
	HeapBeforeBytes uint64 `json:"heap_before_bytes"`
	// HeapPeakBytes is the largest heap (objects live or not yet swept)
	// seen during the builds, sampled every millisecond.
	HeapPeakBytes uint64 `json:"heap_peak_bytes"`
	// AllocBytesPerBuild is what one build allocated, on average.
	AllocBytesPerBuild uint64 `json:"alloc_bytes_per_build"`
	// RSSPeakBytes is the process's peak resident set size (VmHWM in
	// /proc/self/status), 0 where there is no /proc.
	RSSPeakBytes uint64 `json:"rss_peak_bytes"`
	// RSSPeakSince says what RSSPeakBytes covers: "input_made" when the
	// peak was reset after the input entries were made (Linux
	// /proc/self/clear_refs), else "process_start".
	RSSPeakSince string `json:"rss_peak_since"`
}

func benchCRLCmd(*env) *cobra.Command {
	o := &crlOptions{clock: time.Now}
	cmd := &cobra.Command{
		Use:   "crl [--entries N] [--count N] [--json]",
		Short: "Time building and signing one CRL with N revoked entries, and its memory",
		Long: `crl times revocation.BuildCRL, the CRL encoder the server runs in the background,
in this process: no server is needed. It makes a throwaway P-256 root and
intermediate and --entries revoked entries (random 128-bit serials, reasons
unspecified, keyCompromise, affiliationChanged and superseded in turn, an
invalidity date on a quarter of them), then builds and signs the CRL --count times
one after another. Latency figures are per build; throughput is builds per second.

Memory: the live heap before the first build (the input entries and the rest of
this process), the peak heap during the builds (sampled every millisecond, so a
build shorter than that may be missed), the bytes one build allocates, and the
peak resident set (VmHWM), reset after the input is made where Linux allows it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(o.cpuProfile, func() error { return runBenchCRL(cmd, o) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.entries, "entries", 100_000, "revoked certificates on the CRL")
	f.IntVar(&o.count, "count", 1, "how many builds to time")
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	addCPUProfileFlag(cmd, &o.cpuProfile)
	return cmd
}

func runBenchCRL(cmd *cobra.Command, o *crlOptions) error {
	if o.entries < 0 || o.count < 1 {
		return usageError{"--entries must not be negative and --count must be at least 1"}
	}
	req, err := crlBenchRequest(o.entries, o.clock())
	if err != nil {
		return err
	}

	runtime.GC()
	heapBefore, allocsBefore := readMetric(metricHeapObjects), readMetric(metricHeapAllocs)
	since := "process_start"
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil {
		since = "input_made"
	}
	stop, peak := make(chan struct{}), make(chan uint64)
	go sampleHeapPeak(stop, peak)

	times := ""
	if o.count > 1 {
		times = fmt.Sprintf(", %d times", o.count)
	}
	progress(cmd, "building a CRL of %d entries%s", o.entries, times)
	var size int
	rep, err := loadgen.Run(cmd.Context(), loadgen.Config{Mode: "crl", Clients: 1, Count: o.count, Clock: o.clock,
		Op: func(context.Context, loadgen.Call) error {
			der, err := revocation.BuildCRL(req)
			if err != nil {
				return loadgen.Fail("build_failed", err)
			}
			size = len(der)
			return nil
		}})
	close(stop)
	heapPeak := <-peak
	if err != nil {
		return err
	}
	full := crlReport{
		Report: rep, Entries: o.entries, CRLBytes: size,
		HeapBeforeBytes: heapBefore, HeapPeakBytes: heapPeak,
		AllocBytesPerBuild: (readMetric(metricHeapAllocs) - allocsBefore) / uint64(max(rep.Requests, 1)),
		RSSPeakBytes:       peakRSS(), RSSPeakSince: since,
	}
	lines := []string{
		fmt.Sprintf("%d entries: CRL of %s", o.entries, mib(uint64(size))),
		fmt.Sprintf("heap: %s live before, peak %s during the builds, %s allocated per build",
			mib(full.HeapBeforeBytes), mib(full.HeapPeakBytes), mib(full.AllocBytesPerBuild)),
		fmt.Sprintf("peak RSS (VmHWM, since %s): %s", strings.ReplaceAll(since, "_", " "), mib(full.RSSPeakBytes)),
	}
	return finishBench(cmd, o.asJSON, benchReport{rep: rep, full: full, lines: lines})
}

// crlBenchRequest is a CRL of n entries signed by a throwaway hierarchy.
func crlBenchRequest(n int, now time.Time) (revocation.CRLRequest, error) {
	now = now.UTC().Truncate(time.Second)
	rootKey, err := ca.GenerateKey(ca.KeyP256)
	if err != nil {
		return revocation.CRLRequest{}, err
	}
	root, err := ca.NewRoot(ca.RootRequest{CommonName: "workerca bench root (throwaway)", Key: rootKey, Now: now})
	if err != nil {
		return revocation.CRLRequest{}, err
	}
	intKey, err := ca.GenerateKey(ca.KeyP256)
	if err != nil {
		return revocation.CRLRequest{}, err
	}
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{CommonName: "workerca bench intermediate (throwaway)",
		PublicKey: intKey.Public(), Root: root, RootKey: rootKey, Now: now})
	if err != nil {
		return revocation.CRLRequest{}, err
	}
	entries := make([]revocation.CRLEntry, n)
	invalidity := now.Add(-72 * time.Hour)
	reasons := [...]int{0, 1, 3, 4} // unspecified, keyCompromise, affiliationChanged, superseded
	for i := range entries {
		serial, err := ca.NewSerial(rand.Reader)
		if err != nil {
			return revocation.CRLRequest{}, err
		}
		entries[i] = revocation.CRLEntry{Serial: serial, RevokedAt: now.Add(-time.Duration(i) * time.Second), Reason: reasons[i%len(reasons)]}
		if i%4 == 1 {
			entries[i].InvalidityDate = &invalidity
		}
	}
	return revocation.CRLRequest{
		Issuer: inter, Signer: intKey, Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
		DistributionPoint: "http://ca.bench.invalid/crl/0.crl", Entries: entries,
	}, nil
}

// sampleHeapPeak reads the heap size every millisecond until stop is
// closed, then sends the largest it saw on peak.
func sampleHeapPeak(stop <-chan struct{}, peak chan<- uint64) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var top uint64
	for {
		top = max(top, readMetric(metricHeapObjects))
		select {
		case <-stop:
			peak <- max(top, readMetric(metricHeapObjects))
			return
		case <-tick.C:
		}
	}
}

// readMetric reads one uint64 runtime metric; 0 if it does not exist.
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// peakRSS is VmHWM from /proc/self/status in bytes, 0 if unreadable.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// mib prints a byte count in MiB.
func mib(b uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
