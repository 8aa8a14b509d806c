package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Enrollment methods, as the CA names them.
const (
	MethodToken = "token"
	MethodAWS   = "aws-iid"
	MethodGCP   = "gcp-iit"
	MethodAzure = "azure"
	MethodTPM   = "tpm"
)

// Key types the agent can make.
const (
	KeyP256    = "p256"
	KeyP384    = "p384"
	KeyEd25519 = "ed25519"
)

// Default metadata service endpoints.
const (
	DefaultAWSMetadata   = "http://169.254.169.254"
	DefaultGCPMetadata   = "http://metadata.google.internal"
	DefaultAzureMetadata = "http://169.254.169.254"
)

// Metadata holds the base URLs of the cloud metadata services; empty
// fields take the providers' well-known addresses.
type Metadata struct {
	// AWS is the EC2 IMDS base URL (IMDSv2 token flow).
	AWS string
	// GCP is the Compute Engine metadata server base URL.
	GCP string
	// Azure is the Azure IMDS base URL.
	Azure string
}

// Config configures an Agent. Zero values take the documented defaults.
type Config struct {
	// CAURL is the CA's HTTPS base URL, e.g. https://ca.example.com:8443.
	// Required.
	CAURL string
	// Pin is "sha256:<hex>", the SHA-256 of the root certificate's
	// SubjectPublicKeyInfo DER. Required for the first contact (no
	// bundle.pem in Dir); afterwards, when set, bundle.pem must hold the
	// pinned root.
	Pin string
	// Dir is where key.pem, cert.pem, chain.pem and bundle.pem live.
	// Required; created 0700 if missing.
	Dir string
	// Method is the enrollment method: token, aws-iid, gcp-iit, azure or
	// tpm. Required for Enroll and for re-attestation in Run.
	Method string
	// TokenFile holds the one-time enrollment token (method token). It is
	// read at each enrollment, so a fresh token written there is used the
	// next time the CA asks for attestation.
	TokenFile string
	// Pool, if set, names the pool to enroll into (JSON methods only;
	// a token is bound to its pool).
	Pool string
	// KeyType is p256 (default), p384 or ed25519. Method tpm makes a
	// P-256 key in the TPM and accepts only p256.
	KeyType string
	// TPM is the TPM that holds the worker key with method tpm, and how
	// to open it.
	TPM TPM
	// Metadata are the metadata service endpoints.
	Metadata Metadata
	// Timeout bounds each HTTP request; default 30s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound Run's exponential backoff after a
	// failure that may pass; defaults 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// Jitter is the largest fraction of the lifetime by which Run renews
	// earlier than two thirds of it, spreading a fleet's renewals;
	// default 0.1, at most 0.3.
	Jitter float64
	// OnRenew runs after each new certificate is on disk (reload a
	// server, signal a process). An error is logged, not fatal.
	OnRenew func() error
	// Clock is the current time; default time.Now.
	Clock func() time.Time
	// After waits like time.After (the default); tests drive it.
	After func(time.Duration) <-chan time.Time
	// Rand is the randomness for keys and jitter; default crypto/rand.
	Rand io.Reader
	// Logger receives progress and failures; default discards.
	Logger *slog.Logger
}

// Agent enrolls and renews one worker certificate in one directory.
type Agent struct {
	cfg Config
	ca  *url.URL
	log *slog.Logger
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Agent, error) {
	if cfg.CAURL == "" {
		return nil, errors.New("agent: the CA URL is required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.CAURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("agent: CA URL %q must be https://host[:port]", cfg.CAURL)
	}
	if cfg.Dir == "" {
		return nil, errors.New("agent: the output directory is required")
	}
	if cfg.Pin != "" {
		if _, err := parsePin(cfg.Pin); err != nil {
			return nil, err
		}
	}
	switch cfg.Method {
	case "", MethodAWS, MethodGCP, MethodAzure:
	case MethodTPM:
		if cfg.KeyType != "" && cfg.KeyType != KeyP256 {
			return nil, fmt.Errorf("agent: method tpm makes a P-256 key in the TPM: key type %q is not available", cfg.KeyType)
		}
	case MethodToken:
		if cfg.TokenFile == "" {
			return nil, errors.New("agent: method token needs a token file")
		}
	default:
		return nil, fmt.Errorf("agent: unknown method %q (token, aws-iid, gcp-iit, azure, tpm)", cfg.Method)
	}
	switch cfg.KeyType {
	case "":
		cfg.KeyType = KeyP256
	case KeyP256, KeyP384, KeyEd25519:
	default:
		return nil, fmt.Errorf("agent: unknown key type %q (p256, p384, ed25519)", cfg.KeyType)
	}
	if cfg.Metadata.AWS == "" {
		cfg.Metadata.AWS = DefaultAWSMetadata
	}
	if cfg.Metadata.GCP == "" {
		cfg.Metadata.GCP = DefaultGCPMetadata
	}
	if cfg.Metadata.Azure == "" {
		cfg.Metadata.Azure = DefaultAzureMetadata
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MinBackoff < 0 || cfg.MaxBackoff < cfg.MinBackoff {
		return nil, errors.New("agent: backoff bounds must satisfy 0 < min <= max")
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.Jitter < 0 || cfg.Jitter > 0.3 {
		return nil, fmt.Errorf("agent: jitter %v outside [0, 0.3]", cfg.Jitter)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TPM.Open == nil {
		cfg.TPM.Open = OpenTPM
	}
	return &Agent{cfg: cfg, ca: u, log: cfg.Logger}, nil
}

// Dir returns the directory the agent writes.
func (a *Agent) Dir() string { return a.cfg.Dir }
