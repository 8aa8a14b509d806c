// Package azure verifies Azure Instance Metadata Service attested
// documents, the evidence of the "azure" enrollment method.
//
// A worker on an Azure VM asks IMDS for a document bound to the nonce of
// its enrollment challenge:
//
//	curl -s -H Metadata:true --noproxy '*' \
//	  'http://169.254.169.254/metadata/attested/document?api-version=2020-09-01&nonce=<nonce>'
//	{"encoding":"pkcs7","signature":"MIIL..."}
//
// and sends either that whole answer or its "signature" field as
// Evidence.Document. The registration authority verifies it:
//
//	v, err := azure.New(azure.Config{Clock: clock}) // shipped Microsoft roots
//	...
//	doc, err := v.Verify(ev, azure.Policy{Nonce: challenge.Nonce, Subscriptions: pool.AzureSubscriptions})
//	switch {
//	case errors.Is(err, azure.ErrNonce), errors.Is(err, azure.ErrExpired): ...
//	case err != nil: ...
//	}
//	workerID := doc.VMID
//
// The "signature" is a PKCS#7 SignedData (RFC 2315 / RFC 5652) whose
// content is the JSON document (vmId, subscriptionId, sku, plan, nonce,
// timeStamp) and whose only certificate is the signer, a TLS certificate
// for metadata.azure.com. Verify checks, and refuses with the matching
// sentinel error:
//
//   - the RSA PKCS#1 v1.5 signature over the SHA-256 of the content
//     (Azure writes sha256WithRSAEncryption in the digestAlgorithm field
//     and signs without signed attributes; this is done by hand, with
//     github.com/smallstep/pkcs7 used only to parse) — ErrSignature;
//   - the chain from the signer to Config.Roots at the document's
//     createdOn, through the shipped Microsoft issuing CAs, the
//     Config.Intermediates and any certificates in the PKCS#7 — ErrUntrusted.
//     The chain is judged at the instant Azure signed, so that historic
//     evidence can be re-checked with a pinned clock; the freshness checks
//     below tie that instant to now;
//   - the signer's DNS name is metadata.azure.com or below it — ErrSigner;
//   - expiresOn is after now and createdOn is at most ClockSkew ahead of
//     now — ErrExpired. A document valid longer than MaxLifetime (Azure
//     issues them for six hours) is refused as ErrMalformed, which keeps
//     createdOn, and so the chain check, within six hours of now;
//   - the nonce equals Policy.Nonce — ErrNonce;
//   - the subscription is in Policy.Subscriptions — ErrSubscriptionNotAllowed.
//
// The verifier never signs anything and keeps no state between calls:
// single use of the nonce, and replay protection on Document.SHA256, are
// the caller's job.
//
// The shipped roots and intermediates are embedded from certs/; see
// certs/SOURCES.md for where each came from. Package azuretest mints
// real documents under a test authority for tests of the callers.
package azure
