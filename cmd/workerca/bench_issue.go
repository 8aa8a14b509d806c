package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/loadgen"
)

// issueOptions are the flags of bench issue.
type issueOptions struct {
	benchOptions
	keyType      string
	tokens       int
	verifySample int
	verifyRoots  string
}

// issueReport is the JSON report of bench issue.
type issueReport struct {
	*loadgen.Report
	Pool    string `json:"pool"`
	KeyType string `json:"key_type"`
	// Prepared is how many tokens and keys were made before the run.
	Prepared int `json:"prepared"`
	// Sampled chains were checked after the run; Verified of them passed.
	Sampled  int `json:"sampled"`
	Verified int `json:"verified"`
}

func benchIssueCmd(*env) *cobra.Command {
	o := &issueOptions{benchOptions: benchOptions{clock: time.Now}}
	cmd := &cobra.Command{
		Use:   "issue [--ca URL] [--ca-cert F] [--admin-token-file F] [--clients N] [--duration D | --count N]",
		Short: "Enroll with one-time tokens as fast as the CA issues certificates",
		Long: `issue measures issuance over HTTPS: every request is POST /v1/enroll/token with a fresh
key's CSR (application/pkcs10, DER) and a one-time token, answered by a certificate
recorded in the ledger.

Before the timed part it mints the tokens through the admin API (POST
/v1/admin/tokens with "count", 1000 per call; the API key needs scope tokens:create)
and makes the keys and CSRs: --count of each, or --tokens for a run given only a
--duration, which then ends early if they are used up (the report says stopped:
count). Every answer must be 201 with a PEM chain; refusals count under the CA's
error code (rate_limited, pool_full, ...).

After the run, --verify chains spread over the prepared tokens (fewer if the run
did not use them all) are checked: each must verify with crypto/x509 to
--verify-roots (default --ca-cert) for client authentication (EKU clientAuth),
hold the CSR's key and carry the serial of its Workerca-Serial header; one that
does not turns its success into an error chain_invalid.

Every certificate issued stays in the ledger (and counts against the pool's
max_active_workers until it expires): run it against a development or test CA.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCPUProfile(o.cpuProfile, func() error { return runBenchIssue(cmd, o) })
		},
	}
	o.addServerFlags(cmd, 16, "tokens:create")
	f := cmd.Flags()
	f.StringVar(&o.keyType, "key-type", defaultKeyType, "worker key type: P-256, P-384, Ed25519 or RSA (RSA-3072 keys are slow to make)")
	f.IntVar(&o.tokens, "tokens", 20000, "tokens and keys to prepare for a run without --count")
	f.IntVar(&o.verifySample, "verify", 100, "verify every (prepared/N)-th returned chain after the run: N of them, fewer if the run ends before the prepared tokens are used (0: none)")
	f.StringVar(&o.verifyRoots, "verify-roots", "", "PEM roots the sampled chains must verify to (default: --ca-cert)")
	return cmd
}

func runBenchIssue(cmd *cobra.Command, o *issueOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	kt, err := ca.ParseKeyType(o.keyType)
	if err != nil {
		return usageError{fmt.Sprintf("--key-type: %v", err)}
	}
	if o.tokens < 1 || o.verifySample < 0 {
		return usageError{"--tokens must be at least 1 and --verify at least 0"}
	}
	api, err := o.apiClient()
	if err != nil {
		return err
	}
	// Close the keep-alive connections when done, so that a server
	// shutting down does not wait for them.
	defer api.http.CloseIdleConnections()
	verifyRoots := api.roots
	if o.verifyRoots != "" {
		if verifyRoots, err = readRoots(o.verifyRoots); err != nil {
			return err
		}
	}
	n := o.count
	if n == 0 {
		n = o.tokens
	}
	ctx := cmd.Context()
	progress(cmd, "minting %d enrollment tokens for pool %s", n, o.pool)
	tokens, err := o.mintTokens(ctx, api, n)
	if err != nil {
		return err
	}
	progress(cmd, "making %d %s keys and CSRs", n, kt)
	keys, err := newWorkerKeys(ctx, kt, n)
	if err != nil {
		return err
	}

	// The chains to verify are spread over the run: every stride-th.
	type sample struct {
		enrollment
		set bool
	}
	samples := make([]sample, min(o.verifySample, n))
	stride := 1
	if len(samples) > 0 {
		stride = max(1, n/len(samples))
	}
	cfg := o.loadConfig("issue", func(ctx context.Context, c loadgen.Call) error {
		e, err := api.enrollToken(ctx, tokens[c.Seq], keys.csrs[c.Seq])
		if err != nil {
			return err
		}
		if k := c.Seq / stride; c.Seq%stride == 0 && k < len(samples) {
			e.pub = keys.pubs[c.Seq]
			samples[k] = sample{enrollment: e, set: true}
		}
		return nil
	})
	cfg.Count = n // no more requests than tokens
	progress(cmd, "enrolling with %d clients (%s)", o.clients, runLimit(o.count, o.duration))
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}

	full := issueReport{Report: rep, Pool: o.pool, KeyType: string(kt), Prepared: n}
	now := o.clock()
	for _, s := range samples {
		if !s.set {
			continue
		}
		full.Sampled++
		if _, err := s.verify(verifyRoots, now); err != nil {
			rep.MarkFailed("chain_invalid", err)
			continue
		}
		full.Verified++
	}
	lines := []string{
		fmt.Sprintf("pool %s, %s keys, %d tokens and keys prepared", o.pool, kt, n),
		fmt.Sprintf("chains verified after the run: %d of %d sampled", full.Verified, full.Sampled),
	}
	if o.count == 0 && rep.Stopped == loadgen.StoppedCount {
		lines = append(lines, fmt.Sprintf("note: the %d prepared tokens ran out before --duration %s; raise --tokens", n, o.duration))
	}
	return finishBench(cmd, o.asJSON, benchReport{rep: rep, full: full, lines: lines})
}

// runLimit describes when a run stops.
func runLimit(count int, duration time.Duration) string {
	switch {
	case count > 0 && duration > 0:
		return fmt.Sprintf("%d requests or %s, whichever comes first", count, duration)
	case count > 0:
		return fmt.Sprintf("%d requests", count)
	}
	return duration.String()
}
