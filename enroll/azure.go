package enroll

import (
	"context"
	"errors"
	"strings"

	"github.com/workerca/workerca/enroll/azure"
)

// MethodAzure is the Azure IMDS attested document method.
const MethodAzure = "azure"

// AzurePool is one pool's azure policy.
type AzurePool struct {
	// Pool names the pool.
	Pool string
	// Subscriptions lists allowed subscription IDs; empty allows any.
	Subscriptions []string
}

func (p AzurePool) poolName() string { return p.Pool }

// AzureConfig wires the azure attestor.
type AzureConfig struct {
	// Verifier checks documents against Microsoft's roots. Required.
	Verifier *azure.Verifier
	// Pools are tried in order. At least one.
	Pools []AzurePool
}

type azureAttestor struct{ cfg AzureConfig }

// NewAzureAttestor returns the azure attestor. The worker gets a nonce,
// asks IMDS for /metadata/attested/document?nonce=<nonce>, and sends the
// answer (or its "signature" field) as {"document": "..."} with the nonce.
func NewAzureAttestor(cfg AzureConfig) (Attestor, error) {
	if cfg.Verifier == nil || len(cfg.Pools) == 0 {
		return nil, errors.New("enroll: azure: a verifier and at least one pool are required")
	}
	return &azureAttestor{cfg: cfg}, nil
}

func (*azureAttestor) Method() string { return MethodAzure }

var azureKinds = []errorKind{
	{azure.ErrMalformed, ErrEvidenceMalformed},
	{azure.ErrExpired, ErrAttestationExpired},
	{azure.ErrSubscriptionNotAllowed, ErrAttestationNotAllowed},
	{azure.ErrSignature, ErrAttestationInvalid},
	{azure.ErrUntrusted, ErrAttestationInvalid},
	{azure.ErrSigner, ErrAttestationInvalid},
	{azure.ErrNonce, ErrAttestationInvalid},
}

func (a *azureAttestor) Attest(_ context.Context, in AttestInput) (*Attestation, error) {
	var ev azure.Evidence
	if err := DecodeEvidence(in.Evidence, &ev); err != nil {
		return nil, err
	}
	if in.Nonce == "" {
		return nil, errors.Join(ErrNonceRequired, errors.New("the attested document must be requested with a nonce from /v1/enroll/challenge"))
	}
	pools, err := candidatePools(a.cfg.Pools, in.Pool)
	if err != nil {
		return nil, err
	}
	return firstPool(pools, func(p AzurePool) (*Attestation, error) {
		doc, err := a.cfg.Verifier.Verify(ev, azure.Policy{Nonce: in.Nonce, Subscriptions: p.Subscriptions})
		if err != nil {
			return nil, classify(err, azureKinds)
		}
		vm := strings.ToLower(doc.VMID)
		return &Attestation{
			Pool: p.Pool, WorkerID: vm, EnrollmentID: vm,
			Subject: "azure:" + strings.ToLower(doc.SubscriptionID) + ":" + vm,
			Evidence: map[string]any{
				"vm_id": vm, "subscription_id": doc.SubscriptionID, "sku": doc.SKU, "publisher": doc.Publisher, "offer": doc.Offer,
				"created_on": doc.CreatedOn, "signer": doc.Signer.Subject.String(), "document_sha256": doc.SHA256,
			},
			UseKeys:    []string{"azure:document:" + doc.SHA256},
			NonceBound: true,
		}, nil
	})
}
