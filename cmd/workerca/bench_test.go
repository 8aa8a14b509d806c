package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// benchJSON is everything `bench --json` may print; decoding is strict,
// so a field nobody listed here fails the test.
type benchJSON struct {
	Mode           string            `json:"mode"`
	Clients        int               `json:"clients"`
	Duration       string            `json:"duration"`
	Stopped        string            `json:"stopped"`
	Requests       int64             `json:"requests"`
	OK             int64             `json:"ok"`
	Errors         int64             `json:"errors"`
	ErrorsByCode   map[string]int64  `json:"errors_by_code"`
	ErrorSamples   map[string]string `json:"error_samples"`
	ThroughputPerS float64           `json:"throughput_per_s"`
	MeanMs         float64           `json:"mean_ms"`
	P50Ms          float64           `json:"p50_ms"`
	P90Ms          float64           `json:"p90_ms"`
	P99Ms          float64           `json:"p99_ms"`
	MaxMs          float64           `json:"max_ms"`

	// ocsp
	Method          string `json:"method"`
	OCSPURL         string `json:"ocsp_url"`
	Good            int    `json:"good"`
	Revoked         int    `json:"revoked"`
	SignatureChecks int64  `json:"signature_checks"`
	Client          string `json:"client"`
	// issue
	Pool     string `json:"pool"`
	KeyType  string `json:"key_type"`
	Prepared int    `json:"prepared"`
	Sampled  int    `json:"sampled"`
	Verified int    `json:"verified"`
	// crl
	Entries            int    `json:"entries"`
	CRLBytes           int    `json:"crl_bytes"`
	HeapBeforeBytes    uint64 `json:"heap_before_bytes"`
	HeapPeakBytes      uint64 `json:"heap_peak_bytes"`
	AllocBytesPerBuild uint64 `json:"alloc_bytes_per_build"`
	RSSPeakBytes       uint64 `json:"rss_peak_bytes"`
	RSSPeakSince       string `json:"rss_peak_since"`
}

// decodeBench reads the one JSON object bench --json prints, strictly,
// and checks the figures every mode has.
func decodeBench(t *testing.T, stdout string) benchJSON {
	t.Helper()
	var r benchJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("bench --json printed %q: %v", stdout, err)
	}
	if dec.More() {
		t.Fatalf("bench --json printed more than one JSON value: %q", stdout)
	}
	if r.Requests != r.OK+r.Errors || r.ErrorsByCode == nil {
		t.Errorf("requests %d != ok %d + errors %d, or no errors_by_code: %s", r.Requests, r.OK, r.Errors, stdout)
	}
	var byCode int64
	for _, n := range r.ErrorsByCode {
		byCode += n
	}
	if byCode != r.Errors {
		t.Errorf("errors_by_code adds up to %d, errors is %d", byCode, r.Errors)
	}
	if r.Requests > 0 && !(0 < r.P50Ms && r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) {
		t.Errorf("latencies are not 0 < p50 <= p90 <= p99 <= max: %s", stdout)
	}
	if r.OK > 0 && r.ThroughputPerS <= 0 {
		t.Errorf("throughput_per_s %v with %d ok", r.ThroughputPerS, r.OK)
	}
	return r
}

// TestBenchAgainstDev runs bench ocsp and bench issue against `workerca
// dev` on loopback, on each ledger, and checks the reports: every answer
// right, none failed, and a chain checked against another root reported
// as failed.
func TestBenchAgainstDev(t *testing.T) {
	t.Parallel()
	for _, driver := range storetest.Drivers(t) {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			args := []string{"dev", "--dir", dir, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
			if driver == store.DriverPostgres {
				args = append(args, "--db", storetest.Config(t, driver).DSN)
			}
			srv := startServer(t, devBanner, args...)
			// Enrollments below stay within the dev CA's default rate limits
			// (a burst of 60 per source address).
			server := []string{"--ca", "https://" + srv.https, "--ca-cert", filepath.Join(dir, fileRootCert),
				"--admin-token-file", filepath.Join(dir, fileAdminToken), "--json"}

			for _, c := range []struct{ method, client string }{{"get", "raw"}, {"post", "raw"}, {"both", "raw"}, {"both", "net/http"}} {
				method := c.method
				t.Run("ocsp/"+method+"/"+c.client, func(t *testing.T) {
					stdout, _ := mustCLI(t, append([]string{"bench", "ocsp", "--clients", "4", "--count", "300",
						"--good", "2", "--revoked", "2", "--method", method, "--http-client", c.client}, server...)...)
					r := decodeBench(t, stdout)
					if r.Client != c.client {
						t.Errorf("client %q, want %q", r.Client, c.client)
					}
					if r.Mode != "ocsp" || r.OK != 300 || r.Errors != 0 || r.Stopped != "count" || r.Clients != 4 {
						t.Fatalf("mode %s, ok %d, errors %d %v, stopped %s, clients %d; want ocsp, 300 ok, none failed, count, 4",
							r.Mode, r.OK, r.Errors, r.ErrorSamples, r.Stopped, r.Clients)
					}
					if r.Method != method || r.Good != 2 || r.Revoked != 2 || r.OCSPURL != "http://"+srv.http+"/ocsp" {
						t.Errorf("method %s, good %d, revoked %d, url %s", r.Method, r.Good, r.Revoked, r.OCSPURL)
					}
				})
			}

			t.Run("issue", func(t *testing.T) {
				stdout, _ := mustCLI(t, append([]string{"bench", "issue", "--clients", "3", "--count", "12"}, server...)...)
				r := decodeBench(t, stdout)
				if r.Mode != "issue" || r.OK != 12 || r.Errors != 0 || r.Stopped != "count" {
					t.Fatalf("mode %s, ok %d, errors %d %v, stopped %s; want issue, 12 ok, none failed, count",
						r.Mode, r.OK, r.Errors, r.ErrorSamples, r.Stopped)
				}
				if r.Prepared != 12 || r.Sampled != 12 || r.Verified != 12 || r.Pool != "default" || r.KeyType != "P-256" {
					t.Errorf("prepared %d, sampled %d, verified %d, pool %s, key type %s; want 12 verified in default, P-256",
						r.Prepared, r.Sampled, r.Verified, r.Pool, r.KeyType)
				}
			})

			// The chains are checked against another root (the committed
			// certs-dev one; dev made a hierarchy of its own): every
			// sampled chain is a failure, and the exit status says so.
			t.Run("issue/chain-to-another-root", func(t *testing.T) {
				code, stdout, stderr := cli(t, append([]string{"bench", "issue", "--clients", "2", "--count", "4",
					"--verify-roots", filepath.Join("..", "..", "certs-dev", fileRootCert)}, server...)...)
				if code != 1 || !strings.Contains(stderr, "4 of 4 requests failed") {
					t.Errorf("exit %d, stderr %q; want 1 and \"4 of 4 requests failed\"", code, stderr)
				}
				r := decodeBench(t, stdout)
				if r.OK != 0 || r.Errors != 4 || r.ErrorsByCode["chain_invalid"] != 4 || r.Sampled != 4 || r.Verified != 0 {
					t.Fatalf("ok %d, errors %v, sampled %d, verified %d; want 4 chain_invalid of 4 sampled", r.OK, r.ErrorsByCode, r.Sampled, r.Verified)
				}
				if !strings.Contains(r.ErrorSamples["chain_invalid"], "unknown authority") {
					t.Errorf("chain_invalid sample %q does not say why", r.ErrorSamples["chain_invalid"])
				}
			})

			t.Run("issue/text", func(t *testing.T) {
				text := server[:len(server)-1] // without --json
				stdout, stderr := mustCLI(t, append([]string{"bench", "issue", "--clients", "1", "--count", "2"}, text...)...)
				for _, w := range []string{"issue: 1 client,", "requests    2 (ok 2, errors 0)", "throughput", "p50", "p90", "p99", "max",
					"chains verified after the run: 2 of 2 sampled"} {
					if !strings.Contains(stdout, w) {
						t.Errorf("text report lacks %q:\n%s", w, stdout)
					}
				}
				if !strings.Contains(stderr, "bench: minting 2 enrollment tokens") {
					t.Errorf("stderr does not show setup progress: %q", stderr)
				}
			})
		})
	}
}

// TestBenchCRL times a small CRL build, which needs no server.
func TestBenchCRL(t *testing.T) {
	t.Parallel()
	stdout, _ := mustCLI(t, "bench", "crl", "--entries", "1000", "--count", "2", "--json")
	r := decodeBench(t, stdout)
	if r.Mode != "crl" || r.OK != 2 || r.Errors != 0 || r.Entries != 1000 || r.Clients != 1 {
		t.Fatalf("mode %s, ok %d, errors %d, entries %d, clients %d; want crl, 2 ok, 1000 entries, 1 client", r.Mode, r.OK, r.Errors, r.Entries, r.Clients)
	}
	// 1000 entries of a 16-byte serial, a date and mostly a reason: tens
	// of bytes each.
	if r.CRLBytes < 1000*30 || r.CRLBytes > 1000*100 {
		t.Errorf("crl_bytes %d for 1000 entries", r.CRLBytes)
	}
	if r.HeapBeforeBytes == 0 || r.HeapPeakBytes == 0 || r.AllocBytesPerBuild < uint64(r.CRLBytes) {
		t.Errorf("heap before %d, peak %d, allocated per build %d (CRL %d bytes)", r.HeapBeforeBytes, r.HeapPeakBytes, r.AllocBytesPerBuild, r.CRLBytes)
	}
	if r.RSSPeakSince != "input_made" && r.RSSPeakSince != "process_start" {
		t.Errorf("rss_peak_since %q", r.RSSPeakSince)
	}

	// The hidden --cpuprofile writes a profile for docs/benchmarks.md.
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	mustCLI(t, "bench", "crl", "--entries", "100", "--cpuprofile", prof)
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("--cpuprofile wrote no profile: %v", err)
	}
}

// TestBenchUsage checks bench's wrong invocations (exit 2, nothing on
// stdout, no request made: the CA URL points nowhere) and its help.
func TestBenchUsage(t *testing.T) {
	t.Parallel()
	nowhere := []string{"--ca", "https://127.0.0.1:1", "--ca-cert", "missing.pem", "--admin-token-file", "missing.token"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail/clients-zero", []string{"bench", "ocsp", "--clients", "0"}, "--clients 0"},
		{"fail/count-negative", []string{"bench", "issue", "--count", "-1"}, "--count -1"},
		{"fail/duration-negative", []string{"bench", "issue", "--duration", "-1s"}, "--duration -1s"},
		{"fail/duration-not-a-duration", []string{"bench", "issue", "--duration", "soon"}, `invalid argument "soon"`},
		{"fail/method-unknown", []string{"bench", "ocsp", "--method", "put"}, `--method "put"`},
		{"fail/good-and-revoked-zero", []string{"bench", "ocsp", "--good", "0", "--revoked", "0"}, "not both 0"},
		{"fail/key-type-unknown", []string{"bench", "issue", "--key-type", "P-999"}, "--key-type"},
		{"fail/ca-not-https", append([]string{"bench", "issue", "--ca", "http://127.0.0.1:8080"}, nowhere[2:]...), "want https://host:port"},
		{"fail/crl-count-zero", []string{"bench", "crl", "--count", "0"}, "--count must be at least 1"},
		{"fail/positional-argument", []string{"bench", "crl", "extra"}, `unknown command "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.name != "fail/ca-not-https" && args[1] != "crl" {
				args = append(append([]string{}, args...), nowhere...)
			}
			code, stdout, stderr := cli(t, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, stdout, stderr, tc.want)
			}
		})
	}

	helps := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"bench"}},
		{[]string{"bench", "--help"}, []string{"ocsp", "issue", "crl", "rate_limited", "--json"}},
		{[]string{"bench", "ocsp", "--help"}, []string{"--ca", "--ca-cert", "--admin-token-file", "--clients", "--duration", "--count",
			"--good", "--revoked", "--method", "--ocsp-url", "--timeout", "--json", "wrong_status", "tokens:create and revoke"}},
		{[]string{"bench", "issue", "--help"}, []string{"--ca", "--ca-cert", "--admin-token-file", "--clients", "--duration", "--count",
			"--tokens", "--verify", "--verify-roots", "--key-type", "--pool", "chain_invalid", "clientAuth", "count"}},
		{[]string{"bench", "crl", "--help"}, []string{"--entries", "--count", "--json", "VmHWM", "BuildCRL"}},
	}
	for _, h := range helps {
		t.Run(strings.Join(h.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, h.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, w := range h.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "cpuprofile") {
				t.Errorf("help shows the hidden --cpuprofile:\n%s", stdout)
			}
		})
	}
}
