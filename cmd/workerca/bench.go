package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/loadgen"
	"github.com/workerca/workerca/web"
)

// defaultBenchDuration is how long a bench run lasts when neither
// --duration nor --count is given.
const defaultBenchDuration = 10 * time.Second

// maxBenchTokenTTL is the longest enrollment token bench asks for
// (enroll.MaxTokenTTL).
const maxBenchTokenTTL = 7 * 24 * time.Hour

func benchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a running CA (OCSP, issuance) or time a CRL build",
		Long: `bench measures workerca. ocsp and issue load a running CA (workerca dev or serve)
with --clients concurrent clients, each with one keep-alive HTTP/1.1 connection and
one request in flight, for --duration or until --count requests; crl times building
one CRL in this process. Each prints throughput (successful answers per second),
latency percentiles (p50, p90, p99, max, of every request, failed ones included) and
errors by code; --json prints the same as one JSON object. The exit status is 1 if
any request failed.

Keys, CSRs, tokens and OCSP requests are made before the timed part, so a run
measures the CA, not the tool, but both share the machine: on a small host the
figures are lower bounds.

The CA's rate limits apply to bench like to anyone: by default one address gets a
burst of 60 enrollments, then 2 a second, and the rest are refused with
rate_limited, unless workerca.json sets "rate_limits": {"per_source":
{"unlimited": true}} and the pool's "rate_limit": {"unlimited": true} (see
docs/enrollment.md and docs/benchmarks.md).`,
	}
	cmd.AddCommand(benchOCSPCmd(e), benchIssueCmd(e), benchCRLCmd(e))
	return cmd
}

// benchOptions are the flags of the modes that load a running CA.
type benchOptions struct {
	caURL, caCert, keyFile string
	pool                   string
	clients, count         int
	duration, timeout      time.Duration
	asJSON                 bool
	cpuProfile             string
	// clock reads the time for the run and for checking certificates;
	// the command sets time.Now.
	clock func() time.Time
}

// addServerFlags registers the flags of the modes that load a running CA.
func (o *benchOptions) addServerFlags(cmd *cobra.Command, clients int, adminScopes string) {
	f := cmd.Flags()
	f.StringVar(&o.caURL, "ca", "https://"+defaultHTTPSAddr, "the CA's HTTPS base URL: setup goes through its admin API")
	f.StringVar(&o.caCert, "ca-cert", filepath.Join(".workerca-dev", fileRootCert), "PEM roots the CA's HTTPS certificate and the issued chains must chain to")
	f.StringVar(&o.keyFile, "admin-token-file", filepath.Join(".workerca-dev", fileAdminToken), "file holding an API key with scope "+adminScopes+" (or admin), like the admin.token of workerca dev")
	f.StringVar(&o.pool, "pool", "default", "pool to enroll into; it must accept the token method")
	f.IntVar(&o.clients, "clients", clients, "concurrent clients, each with one keep-alive connection and one request at a time")
	f.DurationVar(&o.duration, "duration", 0, "how long to run (10s when neither --duration nor --count is given)")
	f.IntVar(&o.count, "count", 0, "how many requests to make in all; with --duration, the first reached ends the run")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "limit on connecting and on waiting for each answer; a request over it fails with code timeout")
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	addCPUProfileFlag(cmd, &o.cpuProfile)
}

// check validates the run flags and fills the default duration.
func (o *benchOptions) check() error {
	switch {
	case o.clients < 1:
		return usageError{fmt.Sprintf("--clients %d: want at least 1", o.clients)}
	case o.count < 0:
		return usageError{fmt.Sprintf("--count %d: want at least 1", o.count)}
	case o.duration < 0:
		return usageError{fmt.Sprintf("--duration %s: want a positive duration", o.duration)}
	case o.timeout <= 0:
		return usageError{fmt.Sprintf("--timeout %s: want a positive duration", o.timeout)}
	case o.caCert == "" || o.keyFile == "":
		return usageError{"--ca-cert and --admin-token-file are required"}
	}
	if o.count == 0 && o.duration == 0 {
		o.duration = defaultBenchDuration
	}
	return nil
}

// apiClient is the operator client for setup, with a keep-alive
// connection for each of the run's clients.
func (o *benchOptions) apiClient() (*apiClient, error) {
	return newAPIClient(apiClientConfig{URL: o.caURL, RootFile: o.caCert, KeyFile: o.keyFile, Conns: o.clients, Timeout: o.timeout})
}

// loadConfig is the loadgen configuration of the run flags.
func (o *benchOptions) loadConfig(mode string, op func(context.Context, loadgen.Call) error) loadgen.Config {
	return loadgen.Config{Mode: mode, Clients: o.clients, Count: o.count, Duration: o.duration, Op: op, Clock: o.clock}
}

// tokenTTL is long enough for setup and the run: an hour more than the
// run's duration, at most the longest a token may live.
func (o *benchOptions) tokenTTL() time.Duration {
	return min(o.duration+time.Hour, maxBenchTokenTTL).Round(time.Minute)
}

// progress writes a setup note to stderr, so that stdout holds only the
// report.
func progress(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), "bench: "+format+"\n", args...)
}

// benchReport is what a mode prints: the run's report, the JSON object
// (the report's fields and the mode's, in one object) and the mode's
// lines under the text report.
type benchReport struct {
	rep   *loadgen.Report
	full  any
	lines []string
}

// finishBench prints r, as text or as JSON, and fails if any request
// did.
func finishBench(cmd *cobra.Command, asJSON bool, r benchReport) error {
	out := cmd.OutOrStdout()
	if asJSON {
		if err := json.NewEncoder(out).Encode(r.full); err != nil {
			return err
		}
	} else {
		if err := r.rep.WriteText(out); err != nil {
			return err
		}
		for _, l := range r.lines {
			fmt.Fprintf(out, "  %s\n", l)
		}
	}
	if r.rep.Errors > 0 {
		return fmt.Errorf("bench %s: %d of %d requests failed", r.rep.Mode, r.rep.Errors, r.rep.Requests)
	}
	return nil
}

// mintTokens gets n one-time enrollment tokens for o.pool, valid for
// o.tokenTTL, from the batch form of POST /v1/admin/tokens,
// web.MaxTokenBatch at a time.
func (o *benchOptions) mintTokens(ctx context.Context, api *apiClient, n int) ([]string, error) {
	out := make([]string, 0, n)
	for len(out) < n {
		k := min(n-len(out), web.MaxTokenBatch)
		b, err := api.postJSON(ctx, "/v1/admin/tokens", map[string]any{"pool": o.pool, "ttl": o.tokenTTL().String(), "count": k})
		if err != nil {
			return nil, fmt.Errorf("mint enrollment tokens: %w", err)
		}
		var ans struct {
			Tokens []struct {
				Token string `json:"token"`
			} `json:"tokens"`
		}
		if err := json.Unmarshal(b, &ans); err != nil || len(ans.Tokens) != k {
			return nil, fmt.Errorf("mint enrollment tokens: asked for %d, the CA answered %.200s", k, b)
		}
		for _, t := range ans.Tokens {
			out = append(out, t.Token)
		}
	}
	return out, nil
}

// workerKeys are fresh worker keys' public halves and DER CSRs, made
// before a run so that it measures the CA, not key generation.
type workerKeys struct {
	pubs []crypto.PublicKey
	csrs [][]byte
}

// newWorkerKeys makes n keys of type kt and their CSRs on every core.
func newWorkerKeys(ctx context.Context, kt ca.KeyType, n int) (*workerKeys, error) {
	w := &workerKeys{pubs: make([]crypto.PublicKey, n), csrs: make([][]byte, n)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	procs := runtime.GOMAXPROCS(0)
	for p := range procs {
		wg.Go(func() {
			for i := p; i < n && ctx.Err() == nil; i += procs {
				key, err := ca.GenerateKey(kt)
				if err == nil {
					w.csrs[i], err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "workerca-bench"}}, key)
				}
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, fmt.Errorf("worker key: %w", err))
					mu.Unlock()
					return
				}
				w.pubs[i] = key.Public()
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return w, first
}

// enrollment is one answer of POST /v1/enroll/token, and the public key
// of the CSR it answered (set by the caller).
type enrollment struct {
	chain  []byte // PEM
	serial string // the Workerca-Serial header
	pub    crypto.PublicKey
}

// enrollToken posts a DER CSR with a one-time token to
// POST /v1/enroll/token. Failures are loadgen failures with a code.
func (c *apiClient) enrollToken(ctx context.Context, token string, csr []byte) (enrollment, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/enroll/token", bytes.NewReader(csr))
	if err != nil {
		return enrollment{}, err
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return enrollment{}, transportFailure(err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return enrollment{}, transportFailure(err)
	}
	if resp.StatusCode != http.StatusCreated {
		return enrollment{}, httpFailure(resp.StatusCode, body)
	}
	if !bytes.HasPrefix(body, []byte("-----BEGIN CERTIFICATE-----")) {
		return enrollment{}, loadgen.Fail("bad_chain", fmt.Errorf("the answer is not a PEM chain: %.60q", body))
	}
	return enrollment{chain: body, serial: resp.Header.Get("Workerca-Serial")}, nil
}

// verify checks the issued chain and returns it parsed: the leaf
// verifies at now to roots through the chain's other certificates for
// client authentication, certifies e.pub, and has the serial the
// Workerca-Serial header announced.
func (e enrollment) verify(roots *x509.CertPool, now time.Time) ([]*x509.Certificate, error) {
	chain, err := ca.ParseCertificates(e.chain)
	if err != nil {
		return nil, err
	}
	if len(chain) < 2 {
		return nil, fmt.Errorf("the chain has %d certificates, want the leaf and its intermediate", len(chain))
	}
	leaf, inter := chain[0], x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, err
	}
	if k, ok := e.pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return nil, errors.New("the certificate does not hold the CSR's key")
	}
	n, err := ca.ParseSerial(e.serial)
	if err != nil || n.Cmp(leaf.SerialNumber) != 0 {
		return nil, fmt.Errorf("Workerca-Serial %q is not the certificate's serial %s", e.serial, ca.SerialHex(leaf.SerialNumber))
	}
	return chain, nil
}

// httpFailure names a refusal for the report: the CA's error code when
// the body is a JSON error ("rate_limited", "token_used"), else
// http_<status>.
func httpFailure(status int, body []byte) error {
	e := newAPIError(status, body)
	code := e.Code
	if code == "" {
		code = fmt.Sprintf("http_%d", status)
	}
	return loadgen.Fail(code, fmt.Errorf("HTTP %d: %.200s", status, bytes.TrimSpace(body)))
}

// transportFailure names a failed exchange for the report: timeout,
// connection_refused, connection_reset, connection_closed, tls or
// transport.
func transportFailure(err error) error {
	var cve *tls.CertificateVerificationError
	code := "transport"
	switch {
	case loadgen.Code(err) == "timeout":
		code = "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		code = "connection_refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		code = "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		code = "connection_closed"
	case errors.As(err, &cve):
		code = "tls"
	}
	return loadgen.Fail(code, err)
}
