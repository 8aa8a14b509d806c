package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/enroll/agent"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a failure retrying will not fix, or a one-shot enroll that failed
	exitUsage   = 2 // bad flags or arguments
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

// run is the whole program: it parses args (args[0] is the program
// name), runs the command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, streams{stdout, stderr}, agent.OpenTPM)
}

// streams are the program's outputs.
type streams struct{ stdout, stderr io.Writer }

// runWith is run with the TPM opened by openTPM (tests: the simulator).
func runWith(ctx context.Context, args []string, out streams, openTPM agent.TPMOpener) int {
	stdout, stderr := out.stdout, out.stderr
	root := rootCmd(stdout, stderr, openTPM)
	root.SetArgs(args[1:])
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "workerca-agent:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintln(stderr, "Run 'workerca-agent --help' for usage.")
		return exitUsage
	}
	return exitFailure
}

// options are the flags shared by enroll and run.
type options struct {
	ca, pin, dir, method, tokenFile, pool, keyType string
	aws, gcp, azure                                string
	tpmDevice, ekCertificate                       string
	timeout                                        time.Duration
	logJSON                                        bool
	openTPM                                        agent.TPMOpener
}

func (o *options) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.ca, "ca", "", "the CA's HTTPS URL, e.g. https://ca.example.com:8443 (required)")
	f.StringVar(&o.pin, "ca-pin", "", "sha256:<hex> of the root certificate's SubjectPublicKeyInfo; required on first contact (no bundle.pem in --out)")
	f.StringVar(&o.dir, "out", "", "directory for key.pem, cert.pem, chain.pem, bundle.pem (required; created 0700)")
	f.StringVar(&o.method, "method", "", "enrollment method: token, aws-iid, gcp-iit, azure or tpm")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the one-time enrollment token (method token); read at each enrollment")
	f.StringVar(&o.pool, "pool", "", "pool to enroll into (cloud methods; default: the first pool that admits the evidence)")
	f.StringVar(&o.keyType, "key-type", agent.KeyP256, "key type: p256, p384 or ed25519 (method tpm: p256 only)")
	f.StringVar(&o.aws, "aws-metadata-url", agent.DefaultAWSMetadata, "EC2 instance metadata service (IMDSv2) base URL")
	f.StringVar(&o.gcp, "gcp-metadata-url", agent.DefaultGCPMetadata, "GCE metadata server base URL")
	f.StringVar(&o.azure, "azure-metadata-url", agent.DefaultAzureMetadata, "Azure instance metadata service base URL")
	registerTPMDevice(f, &o.tpmDevice)
	f.StringVar(&o.ekCertificate, "ek-certificate", "", "method tpm: file holding the TPM's EK certificate (DER or PEM), sent instead of the one in the TPM (for platforms that ship it as a file)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "timeout of each HTTP request")
	f.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
}

func (o *options) config(stderr io.Writer) (agent.Config, error) {
	if o.ca == "" || o.dir == "" {
		return agent.Config{}, usageError{errors.New("--ca and --out are required")}
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if o.logJSON {
		h = slog.NewJSONHandler(stderr, nil)
	}
	return agent.Config{
		CAURL: o.ca, Pin: o.pin, Dir: o.dir, Method: o.method, TokenFile: o.tokenFile, Pool: o.pool, KeyType: o.keyType,
		Metadata: agent.Metadata{AWS: o.aws, GCP: o.gcp, Azure: o.azure},
		TPM:      agent.TPM{Device: o.tpmDevice, EKCertificateFile: o.ekCertificate, Open: o.openTPM},
		Timeout:  o.timeout, Clock: time.Now, Logger: slog.New(h),
	}, nil
}

// newAgent checks the configuration; an invalid one is a usage error.
func newAgent(cfg agent.Config) (*agent.Agent, error) {
	a, err := agent.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return a, nil
}

func rootCmd(stdout, stderr io.Writer, openTPM agent.TPMOpener) *cobra.Command {
	root := &cobra.Command{
		Use:   "workerca-agent",
		Short: "Enroll this host with a workerca CA and keep its certificate fresh",
		Long: `workerca-agent makes a key on this host (or in its TPM), proves the host's
identity to a workerca CA, and keeps the key, certificate, chain and trust
bundle in a directory, renewing them before they expire.

Exit codes: 0 success (or stopped by SIGINT/SIGTERM), 1 a failure that needs
a person (the message says what to do), 2 bad usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(enrollCmd(stdout, stderr, openTPM), runCmd(stderr, openTPM), tpmCmd(stdout, openTPM))
	return root
}

func enrollCmd(stdout, stderr io.Writer, openTPM agent.TPMOpener) *cobra.Command {
	o := options{openTPM: openTPM}
	cmd := &cobra.Command{
		Use:   "enroll --ca URL --method token|aws-iid|gcp-iit|azure|tpm [--token-file F] --out DIR [--ca-pin sha256:HEX]",
		Short: "Enroll once: make a key, prove this host's identity, write the certificate",
		Long: `enroll makes a new key on this host (P-256 unless --key-type), proves the host's
identity with --method, and writes key.pem (0600), cert.pem, chain.pem and
bundle.pem into --out, each replaced atomically.

With --method tpm the key is made inside the TPM and never leaves it: instead
of key.pem, key.tpm.json (0600) names it, and --out/tpm/ (0700) holds the
TPM-wrapped blobs of the key and of the attestation key, useless without
this TPM.

On first contact (no bundle.pem in --out) only a CA whose root matches
--ca-pin is trusted, and nothing secret is sent until it does. Methods:
  token    the one-time token in --token-file (from 'workerca token create')
  aws-iid  the EC2 identity document and signature from IMDSv2
  gcp-iit  a GCE identity token whose audience carries the CA's nonce
  azure    an Azure attested document carrying the CA's nonce
  tpm      the TPM's endorsement key (its certificate, from the TPM or
           --ek-certificate, else its public key as registered by an
           operator: see 'workerca-agent tpm ek'), an attestation key, and
           TPM2_Certify of the new key; the CA's credential must be
           activated by this TPM`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			if cfg.Method == "" {
				return usageError{errors.New("--method is required")}
			}
			a, err := newAgent(cfg)
			if err != nil {
				return err
			}
			cert, err := a.Enroll(cmd.Context())
			if err != nil {
				if !errors.Is(err, agent.ErrPermanent) {
					return fmt.Errorf("%w (this may pass: retry later)", err)
				}
				return err
			}
			fmt.Fprintf(stdout, "enrolled %s\n  serial %x, valid until %s\n  files in %s\n", cert.SPIFFEID(),
				cert.Leaf.SerialNumber.Bytes(), cert.Leaf.NotAfter.UTC().Format(time.RFC3339), a.Dir())
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

func runCmd(stderr io.Writer, openTPM agent.TPMOpener) *cobra.Command {
	var (
		o                      = options{openTPM: openTPM}
		onRenew                string
		signalPID              int
		minBackoff, maxBackoff time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run --ca URL --out DIR [--method M --token-file F --ca-pin sha256:HEX] [--on-renew CMD | --signal-pid PID]",
		Short: "Keep the certificate fresh: renew before expiry, attest again when the CA asks",
		Long: `run keeps the certificate in --out fresh until SIGINT or SIGTERM. It enrolls
first if --out holds no certificate (needs --method). It renews over mTLS
with a new key (a new TPM key for a TPM enrollment, the old one deleted
once the new certificate is in place) at about two thirds of the lifetime (up to a tenth of the
lifetime earlier, at random), backs off exponentially (--min-backoff to
--max-backoff, or the CA's Retry-After) when the CA or the network fails,
attests again with --method when the CA asks (the pool's renewal chain cap)
or the certificate has expired, and refreshes bundle.pem after each new
certificate. Then it runs --on-renew with sh -c, or sends SIGHUP to
--signal-pid.

It exits 1 on failures retrying cannot fix (a revoked certificate, a used
or expired token when attestation is needed again, a pin mismatch), with a
message saying what to do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(stderr)
			if err != nil {
				return err
			}
			if onRenew != "" && signalPID != 0 {
				return usageError{errors.New("--on-renew and --signal-pid exclude each other")}
			}
			cfg.MinBackoff, cfg.MaxBackoff = minBackoff, maxBackoff
			ctx := cmd.Context()
			switch {
			case onRenew != "":
				cfg.OnRenew = func() error {
					c := exec.CommandContext(ctx, "sh", "-c", onRenew)
					c.Stdout, c.Stderr = stderr, stderr
					c.Env = append(os.Environ(), "WORKERCA_AGENT_DIR="+o.dir)
					if err := c.Run(); err != nil {
						return fmt.Errorf("--on-renew %q: %w", onRenew, err)
					}
					return nil
				}
			case signalPID != 0:
				cfg.OnRenew = func() error {
					p, err := os.FindProcess(signalPID)
					if err == nil {
						err = p.Signal(syscall.SIGHUP)
					}
					if err != nil {
						return fmt.Errorf("--signal-pid %d: %w", signalPID, err)
					}
					return nil
				}
			}
			a, err := newAgent(cfg)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&onRenew, "on-renew", "", "command run with sh -c after each new certificate (WORKERCA_AGENT_DIR is set)")
	f.IntVar(&signalPID, "signal-pid", 0, "process to send SIGHUP after each new certificate")
	f.DurationVar(&minBackoff, "min-backoff", time.Second, "first wait after a failure that may pass")
	f.DurationVar(&maxBackoff, "max-backoff", 5*time.Minute, "longest wait between retries")
	return cmd
}
