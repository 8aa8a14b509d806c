package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/workerca/workerca/enroll/awsiid"
)

// MethodAWS is the EC2 instance identity document method.
const MethodAWS = "aws-iid"

// Re-attestation policies for aws-iid. An instance identity document does
// not change for the life of an instance and carries no nonce, so trust on
// first use is what stops a copied document from enrolling a second
// machine.
const (
	// ReattestOnce admits one enrollment per instance, ever (default).
	ReattestOnce = "once"
	// ReattestAfterExpiry admits another enrollment once the instance's
	// previous certificate has expired or been revoked.
	ReattestAfterExpiry = "after-expiry"
)

// AWSPool is one pool's aws-iid policy.
type AWSPool struct {
	// Pool names the pool.
	Pool string
	// Policy is the account/region allow-list and maximum age.
	Policy awsiid.Policy
	// Reattest is ReattestOnce ("" means it) or ReattestAfterExpiry.
	Reattest string
}

func (p AWSPool) poolName() string { return p.Pool }

// AWSConfig wires the aws-iid attestor.
type AWSConfig struct {
	// Verifier checks documents against AWS's certificates. Required.
	Verifier *awsiid.Verifier
	// Pools are tried in order. At least one.
	Pools []AWSPool
}

type awsAttestor struct{ cfg AWSConfig }

// NewAWSAttestor returns the aws-iid attestor. The worker reads its
// identity document and one signature form from IMDS and sends
// {"document": ..., "signature": ...} or {"document": ..., "pkcs7": ...}.
func NewAWSAttestor(cfg AWSConfig) (Attestor, error) {
	if cfg.Verifier == nil || len(cfg.Pools) == 0 {
		return nil, errors.New("enroll: aws-iid: a verifier and at least one pool are required")
	}
	for _, p := range cfg.Pools {
		if len(p.Policy.Accounts) == 0 {
			return nil, fmt.Errorf("enroll: aws-iid: pool %s: at least one account is required (any AWS customer can get a signed document)", p.Pool)
		}
		if p.Reattest != "" && p.Reattest != ReattestOnce && p.Reattest != ReattestAfterExpiry {
			return nil, fmt.Errorf("enroll: aws-iid: pool %s: reattest %q is not %q or %q", p.Pool, p.Reattest, ReattestOnce, ReattestAfterExpiry)
		}
		if p.Policy.MaxAge < 0 {
			return nil, fmt.Errorf("enroll: aws-iid: pool %s: max_age must not be negative", p.Pool)
		}
	}
	return &awsAttestor{cfg: cfg}, nil
}

func (*awsAttestor) Method() string { return MethodAWS }

var awsKinds = []errorKind{
	{awsiid.ErrMalformed, ErrEvidenceMalformed},
	{awsiid.ErrTooOld, ErrAttestationExpired},
	{awsiid.ErrFromFuture, ErrAttestationInvalid},
	{awsiid.ErrAccountNotAllowed, ErrAttestationNotAllowed},
	{awsiid.ErrRegionNotAllowed, ErrAttestationNotAllowed},
	{awsiid.ErrSignature, ErrAttestationInvalid},
}

func (a *awsAttestor) Attest(_ context.Context, in AttestInput) (*Attestation, error) {
	ev, err := awsiid.DecodeEvidence(in.Evidence)
	if err != nil {
		return nil, classify(err, awsKinds)
	}
	pools, err := candidatePools(a.cfg.Pools, in.Pool)
	if err != nil {
		return nil, err
	}
	return firstPool(pools, func(p AWSPool) (*Attestation, error) {
		doc, err := a.cfg.Verifier.Verify(ev, p.Policy)
		if err != nil {
			return nil, classify(err, awsKinds)
		}
		subject := "aws:" + doc.AccountID + ":" + doc.InstanceID
		at := &Attestation{
			Pool: p.Pool, WorkerID: doc.InstanceID, EnrollmentID: doc.InstanceID, Subject: subject,
			Evidence: map[string]any{
				"account_id": doc.AccountID, "region": doc.Region, "instance_id": doc.InstanceID,
				"image_id": doc.ImageID, "instance_type": doc.InstanceType, "availability_zone": doc.AvailabilityZone,
				"pending_time": doc.PendingTime.UTC().Format(time.RFC3339), "form": doc.Form,
			},
		}
		if p.Reattest == ReattestAfterExpiry {
			at.ExclusiveSubject = true
		} else {
			at.UseKeys = []string{"aws-iid:instance:" + doc.AccountID + ":" + doc.InstanceID}
		}
		return at, nil
	})
}
