package enroll

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit"
)

// MethodGCP is the GCE instance identity token method.
const MethodGCP = "gcp-iit"

// GCPPool is one pool's gcp-iit policy.
type GCPPool struct {
	// Pool names the pool.
	Pool string
	// Projects lists allowed project IDs (or numbers); empty allows any.
	Projects []string
	// MaxInstanceAge refuses older instances; 0 means no limit.
	MaxInstanceAge time.Duration
}

func (p GCPPool) poolName() string { return p.Pool }

// GCPConfig wires the gcp-iit attestor.
type GCPConfig struct {
	// Verifier checks tokens against Google's key set. Required.
	Verifier *gcpiit.Verifier
	// PublicURL is the CA's base URL as workers reach it, e.g.
	// "https://ca.example.com"; the token's audience must be
	// PublicURL + "/v1/enroll?nonce=" + nonce. Required.
	PublicURL string
	// Pools are tried in order. At least one.
	Pools []GCPPool
}

type gcpAttestor struct{ cfg GCPConfig }

// NewGCPAttestor returns the gcp-iit attestor. The worker asks its
// metadata server for an identity token (format=full) whose audience is
// PublicURL + "/v1/enroll?nonce=" + a nonce from POST /v1/enroll/challenge,
// and sends {"token": "..."} as evidence with that nonce.
func NewGCPAttestor(cfg GCPConfig) (Attestor, error) {
	if cfg.Verifier == nil || len(cfg.Pools) == 0 {
		return nil, errors.New("enroll: gcp-iit: a verifier and at least one pool are required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("enroll: gcp-iit: public URL %q must be an https URL without query", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	for _, p := range cfg.Pools {
		if err := (gcpiit.Policy{Audience: "x", Projects: p.Projects, MaxInstanceAge: p.MaxInstanceAge}).Validate(); err != nil {
			return nil, fmt.Errorf("enroll: gcp-iit: pool %s: %w", p.Pool, err)
		}
	}
	return &gcpAttestor{cfg: cfg}, nil
}

func (*gcpAttestor) Method() string { return MethodGCP }

var gcpKinds = []errorKind{
	{gcpiit.ErrMalformed, ErrEvidenceMalformed},
	{gcpiit.ErrNotComputeEngine, ErrEvidenceMalformed},
	{gcpiit.ErrKeysUnavailable, ErrAttestorUnavailable},
	{gcpiit.ErrExpired, ErrAttestationExpired},
	{gcpiit.ErrProjectNotAllowed, ErrAttestationNotAllowed},
	{gcpiit.ErrInstanceTooOld, ErrAttestationNotAllowed},
	{gcpiit.ErrSignature, ErrAttestationInvalid},
	{gcpiit.ErrIssuer, ErrAttestationInvalid},
	{gcpiit.ErrAudience, ErrAttestationInvalid},
}

func (g *gcpAttestor) Attest(ctx context.Context, in AttestInput) (*Attestation, error) {
	var ev gcpiit.Evidence
	if err := DecodeEvidence(in.Evidence, &ev); err != nil {
		return nil, err
	}
	if in.Nonce == "" {
		return nil, fmt.Errorf("%w: the token's audience must carry a nonce from /v1/enroll/challenge", ErrNonceRequired)
	}
	pools, err := candidatePools(g.cfg.Pools, in.Pool)
	if err != nil {
		return nil, err
	}
	aud := g.cfg.PublicURL + "/v1/enroll?nonce=" + in.Nonce
	return firstPool(pools, func(p GCPPool) (*Attestation, error) {
		id, err := g.cfg.Verifier.Verify(ctx, ev, gcpiit.Policy{Audience: aud, Projects: p.Projects, MaxInstanceAge: p.MaxInstanceAge})
		if err != nil {
			return nil, classify(err, gcpKinds)
		}
		return &Attestation{
			Pool: p.Pool, WorkerID: id.InstanceID, EnrollmentID: id.InstanceID,
			Subject: "gcp:" + id.ProjectID + ":" + id.InstanceID,
			Evidence: map[string]any{
				"project_id": id.ProjectID, "project_number": id.ProjectNumber, "zone": id.Zone,
				"instance_id": id.InstanceID, "instance_name": id.InstanceName, "service_account": id.Email,
				"instance_created": id.InstanceCreated, "token_sha256": id.TokenSHA256,
			},
			UseKeys:    []string{"gcp-iit:token:" + id.TokenSHA256},
			NonceBound: true,
		}, nil
	})
}
