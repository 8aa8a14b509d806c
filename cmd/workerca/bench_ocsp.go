package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/loadgen"
	"github.com/workerca/workerca/web"
	xocsp "golang.org/x/crypto/ocsp"
)

// ocspOptions are the flags of bench ocsp.
type ocspOptions struct {
	benchOptions
	good, revoked int
	method        string
	ocspURL       string
	httpClient    string
}

// ocspReport is the JSON report of bench ocsp.
type ocspReport struct {
	*loadgen.Report
	// Method is get, post or both.
	Method string `json:"method"`
	// OCSPURL is where the requests went.
	OCSPURL string `json:"ocsp_url"`
	// Good and Revoked are how many certificates of each were asked about.
	Good    int `json:"good"`
	Revoked int `json:"revoked"`
	// SignatureChecks counts answers that were parsed and their signature
	// verified; every other successful answer was byte for byte one
	// already verified for the same request by the same client.
	SignatureChecks int64 `json:"signature_checks"`
	// Client is the HTTP client the tool used: raw or net/http.
	Client string `json:"client"`
}

func benchOCSPCmd(*env) *cobra.Command {
	o := &ocspOptions{benchOptions: benchOptions{clock: time.Now}}
	cmd := &cobra.Command{
		Use:   "ocsp [--ca URL] [--ca-cert F] [--admin-token-file F] [--clients N] [--duration D | --count N]",
		Short: "Ask the OCSP responder about good and revoked certificates, as fast as it answers",
		Long: `ocsp measures the OCSP responder (RFC 6960, cached answers).

Setup, through the admin API at --ca: mint --good + --revoked enrollment tokens
(scope tokens:create), enroll that many fresh P-256 keys, verify each chain to
--ca-cert, and revoke the --revoked ones with reason keyCompromise (POST
/v1/admin/revocations, scope revoke). Then it builds one OCSP request (SHA-256
CertID, no nonce) per certificate and --method: GET /ocsp/<base64> and/or POST with
application/ocsp-request, sent in turn by every client to --ocsp-url (default: the
OCSP URL in the certificates, which for workerca dev is its plain HTTP listener;
http and https both work).

Every answer is checked: HTTP 200, a successful OCSPResponse, signed by a responder
the intermediate certified, for the serial asked, not past its nextUpdate, and good
for a good certificate, revoked for a revoked one; a wrong status counts as
wrong_status. An answer byte for byte equal to one the same client already verified
for the same request is not parsed again (see signature_checks): checking costs
the tool a byte comparison, not a signature verification, per answer.

--http-client raw (the default for an http:// OCSP URL) sends each client's
pre-rendered HTTP/1.1 requests on one keep-alive connection and reads the answers
itself, as wrk does, so that the tool leaves the CPU to the responder; net/http
(always used for https://) goes through Go's HTTP client.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(o.cpuProfile, func() error { return runBenchOCSP(cmd, o) })
		},
	}
	o.addServerFlags(cmd, 64, "tokens:create and revoke")
	f := cmd.Flags()
	f.IntVar(&o.good, "good", 10, "certificates to enroll and leave good")
	f.IntVar(&o.revoked, "revoked", 10, "certificates to enroll and revoke")
	f.StringVar(&o.method, "method", "both", "get, post, or both (alternating)")
	f.StringVar(&o.ocspURL, "ocsp-url", "", "OCSP responder URL, http or https (default: the certificates' AIA OCSP URL)")
	f.StringVar(&o.httpClient, "http-client", "", "raw or net/http (default: raw for an http:// URL, net/http for https://)")
	return cmd
}

// ocspTarget is one pre-built OCSP request and the answer it must get.
type ocspTarget struct {
	method string
	url    string
	der    []byte // the POST body; nil for GET
	serial *big.Int
	want   int // xocsp.Good or xocsp.Revoked
}

// ocspClient is one bench client's own state: its pre-built requests,
// the answers it has verified (both by target) and a reusable body
// buffer.
type ocspClient struct {
	reqs      []*http.Request
	raw       []loadgen.RawRequest
	conn      *loadgen.RawConn
	verified  [][]byte
	buf       bytes.Buffer
	sigChecks int64
}

func runBenchOCSP(cmd *cobra.Command, o *ocspOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	methods, ok := map[string][]string{"get": {http.MethodGet}, "post": {http.MethodPost}, "both": {http.MethodGet, http.MethodPost}}[o.method]
	if !ok {
		return usageError{fmt.Sprintf("--method %q: want get, post or both", o.method)}
	}
	if o.good < 0 || o.revoked < 0 || o.good+o.revoked == 0 {
		return usageError{"--good and --revoked must not be negative, and not both 0"}
	}
	api, err := o.apiClient()
	if err != nil {
		return err
	}
	// Close the keep-alive connections when done, so that a server
	// shutting down does not wait for them.
	defer api.http.CloseIdleConnections()
	ctx := cmd.Context()
	certs, issuer, err := o.setup(cmd, api)
	if err != nil {
		return err
	}
	ocspURL := o.ocspURL
	if ocspURL == "" {
		if len(certs[0].OCSPServer) == 0 {
			return errors.New("bench ocsp: the certificates name no OCSP URL; give --ocsp-url")
		}
		ocspURL = certs[0].OCSPServer[0]
	}
	u, err := url.Parse(ocspURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return usageError{fmt.Sprintf("OCSP URL %q: want http:// or https://", ocspURL)}
	}
	switch o.httpClient {
	case "":
		o.httpClient = "net/http"
		if u.Scheme == "http" {
			o.httpClient = "raw"
		}
	case "net/http":
	case "raw":
		if u.Scheme != "http" {
			return usageError{"--http-client raw speaks plain HTTP only; the OCSP URL is " + ocspURL}
		}
	default:
		return usageError{fmt.Sprintf("--http-client %q: want raw or net/http", o.httpClient)}
	}
	rawAddr := u.Host
	if u.Port() == "" {
		rawAddr += ":80"
	}
	var targets []ocspTarget
	for i, leaf := range certs {
		der, err := xocsp.CreateRequest(leaf, issuer, &xocsp.RequestOptions{Hash: crypto.SHA256})
		if err != nil {
			return fmt.Errorf("bench ocsp: OCSP request: %w", err)
		}
		want := xocsp.Good
		if i >= o.good {
			want = xocsp.Revoked
		}
		for _, m := range methods {
			t := ocspTarget{method: m, url: ocspURL, serial: leaf.SerialNumber, want: want}
			if m == http.MethodGet {
				// RFC 6960 Appendix A.1: the URL-encoded base64 of the DER.
				t.url = strings.TrimSuffix(ocspURL, "/") + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
			} else {
				t.der = der
			}
			targets = append(targets, t)
		}
	}

	// Requests go straight to the transport: http.Client's redirects,
	// request copy and timer per request cost the tool some 5 % of its
	// CPU, which the CA would miss. The transport bounds the wait.
	transport := newTransport(api.roots, o.clients, o.timeout)
	defer transport.CloseIdleConnections()
	clients := make([]ocspClient, o.clients)
	for c := range clients {
		clients[c].verified = make([][]byte, len(targets))
		for _, t := range targets {
			req, err := http.NewRequestWithContext(ctx, t.method, t.url, nil)
			if err != nil {
				return fmt.Errorf("bench ocsp: %w", err)
			}
			if t.der != nil {
				req.Header.Set("Content-Type", "application/ocsp-request")
				req.ContentLength = int64(len(t.der))
			}
			clients[c].reqs = append(clients[c].reqs, req)
			if o.httpClient == "raw" {
				raw, err := loadgen.NewRawRequest(t.method, t.url, "application/ocsp-request", t.der)
				if err != nil {
					return fmt.Errorf("bench ocsp: %w", err)
				}
				clients[c].raw = append(clients[c].raw, raw)
			}
		}
		if o.httpClient == "raw" {
			clients[c].conn = loadgen.NewRawConn(rawAddr, o.timeout)
			defer clients[c].conn.Close()
		}
	}
	// roundTrip sends client st's request i and reads the answer into
	// st.buf.
	roundTrip := func(st *ocspClient, i int) (int, error) {
		if st.conn != nil {
			return st.conn.Do(st.raw[i], &st.buf)
		}
		t, req := &targets[i], st.reqs[i]
		if t.der != nil {
			// A copy with a fresh body: the transport may still hold the
			// request of the last round trip.
			r := *req
			r.Body = io.NopCloser(bytes.NewReader(t.der))
			req = &r
		}
		resp, err := transport.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		st.buf.Reset()
		_, err = st.buf.ReadFrom(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode, err
	}
	op := func(ctx context.Context, c loadgen.Call) error {
		st, i := &clients[c.Client], c.Seq%len(targets)
		t := &targets[i]
		status, err := roundTrip(st, i)
		if err != nil {
			return transportFailure(err)
		}
		if status != http.StatusOK {
			return httpFailure(status, st.buf.Bytes())
		}
		if bytes.Equal(st.buf.Bytes(), st.verified[i]) {
			return nil
		}
		st.sigChecks++
		if err := t.check(st.buf.Bytes(), issuer, o.clock()); err != nil {
			return err
		}
		st.verified[i] = bytes.Clone(st.buf.Bytes())
		return nil
	}

	// Warm up: client 0 asks once for each target and verifies the
	// answers, which every client then starts from. A revocation shows in
	// OCSP within a second; allow for that.
	progress(cmd, "checking the first answers from %s", ocspURL)
	for i := range targets {
		if err := retrySoon(ctx, func() error { return op(ctx, loadgen.Call{Seq: i}) }); err != nil {
			return fmt.Errorf("bench ocsp: warm-up %s for serial %s: %w", targets[i].method, ca.SerialHex(targets[i].serial), err)
		}
	}
	for c := 1; c < len(clients); c++ {
		copy(clients[c].verified, clients[0].verified)
	}
	clients[0].sigChecks = 0

	progress(cmd, "asking with %d clients (%s)", o.clients, runLimit(o.count, o.duration))
	rep, err := loadgen.Run(ctx, o.loadConfig("ocsp", op))
	if err != nil {
		return err
	}
	full := ocspReport{Report: rep, Method: o.method, OCSPURL: ocspURL, Good: o.good, Revoked: o.revoked, Client: o.httpClient}
	for c := range clients {
		full.SignatureChecks += clients[c].sigChecks
	}
	lines := []string{
		fmt.Sprintf("%d good and %d revoked certificates, %s to %s", o.good, o.revoked, strings.ToUpper(strings.Join(methods, "+")), ocspURL),
		fmt.Sprintf("every answer checked: %d by signature, the others byte-equal to a verified one", full.SignatureChecks),
		"HTTP client: " + o.httpClient,
	}
	return finishBench(cmd, o.asJSON, benchReport{rep: rep, full: full, lines: lines})
}

// setup enrolls o.good + o.revoked certificates and revokes the last
// o.revoked of them. It returns the leaves (good ones first) and their
// issuer.
func (o *ocspOptions) setup(cmd *cobra.Command, api *apiClient) ([]*x509.Certificate, *x509.Certificate, error) {
	ctx := cmd.Context()
	n := o.good + o.revoked
	progress(cmd, "enrolling %d certificates in pool %s", n, o.pool)
	tokens, err := o.mintTokens(ctx, api, n)
	if err != nil {
		return nil, nil, err
	}
	keys, err := newWorkerKeys(ctx, ca.KeyP256, n)
	if err != nil {
		return nil, nil, err
	}
	certs := make([]*x509.Certificate, n)
	var issuer *x509.Certificate
	for i := range n {
		e, err := api.enrollToken(ctx, tokens[i], keys.csrs[i])
		if err != nil {
			return nil, nil, fmt.Errorf("bench ocsp: setup: enroll: %w", err)
		}
		e.pub = keys.pubs[i]
		chain, err := e.verify(api.roots, o.clock())
		if err != nil {
			return nil, nil, fmt.Errorf("bench ocsp: setup: the issued chain: %w", err)
		}
		certs[i], issuer = chain[0], chain[1]
	}
	if o.revoked > 0 {
		progress(cmd, "revoking %d of them", o.revoked)
	}
	for _, leaf := range certs[o.good:] {
		serial := ca.SerialHex(leaf.SerialNumber)
		b, err := api.postJSON(ctx, "/v1/admin/revocations", map[string]string{"serial": serial, "reason": "keyCompromise"})
		if err != nil {
			return nil, nil, fmt.Errorf("bench ocsp: setup: revoke %s: %w", serial, err)
		}
		var res web.RevokeResponse
		if err := json.Unmarshal(b, &res); err != nil || !(slices.Contains(res.Revoked, serial) || slices.Contains(res.AlreadyRevoked, serial)) {
			return nil, nil, fmt.Errorf("bench ocsp: setup: revoke %s: the CA answered %.200s", serial, b)
		}
	}
	return certs, issuer, nil
}

// check verifies an OCSP answer for t: a successful response signed for
// issuer, about t's serial, with the status t wants, not expired at now.
func (t *ocspTarget) check(der []byte, issuer *x509.Certificate, now time.Time) error {
	r, err := xocsp.ParseResponse(der, issuer)
	var re xocsp.ResponseError
	switch {
	case errors.As(err, &re):
		return loadgen.Fail("ocsp_"+strings.ReplaceAll(re.Status.String(), " ", "_"), err)
	case err != nil:
		return loadgen.Fail("bad_response", err)
	case r.SerialNumber.Cmp(t.serial) != 0:
		return loadgen.Fail("wrong_serial", fmt.Errorf("asked about %s, answered about %s", ca.SerialHex(t.serial), ca.SerialHex(r.SerialNumber)))
	case r.Status != t.want:
		return loadgen.Fail("wrong_status", fmt.Errorf("serial %s: want %s, got %s", ca.SerialHex(t.serial), ocspStatusName(t.want), ocspStatusName(r.Status)))
	case !r.NextUpdate.IsZero() && !now.Before(r.NextUpdate):
		return loadgen.Fail("stale_answer", fmt.Errorf("serial %s: nextUpdate %s has passed", ca.SerialHex(t.serial), r.NextUpdate.Format(time.RFC3339)))
	}
	return nil
}

func ocspStatusName(s int) string {
	switch s {
	case xocsp.Good:
		return "good"
	case xocsp.Revoked:
		return "revoked"
	case xocsp.Unknown:
		return "unknown"
	}
	return fmt.Sprintf("status %d", s)
}

// retrySoon calls fn until it succeeds, ten times at most, 200 ms apart,
// or until ctx is done; it returns fn's last error.
func retrySoon(ctx context.Context, fn func() error) error {
	const attempts, wait = 10, 200 * time.Millisecond
	var err error
	for range attempts {
		if err = fn(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
	return err
}
