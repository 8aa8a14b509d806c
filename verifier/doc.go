// Package verifier is the relying party's side of workerca: it checks a
// worker certificate, or an artifact signature and its receipt, against
// a trust bundle and the CA's revocation status, at now or at the time
// an artifact was signed. `workerca verify` is this package on the
// command line; services accepting worker mTLS or release pipelines
// checking artifacts embed it.
//
// A check ends in a *Result: Accepted, a stable Code ("ok",
// "digest_mismatch", "revoked", ...) and what was learned (serial,
// SPIFFE ID, pool, the instant checked, the revocation). A rejection is
// a Result with Accepted false and a nil error. An error means the
// verifier could not decide: ErrUnavailable (the status server is down
// or answered what does not verify, no fresh CRL covers the
// certificate), ErrConfig, ErrInvalidRequest. Never treat an error as
// acceptance.
//
// The checks, in order:
//
//  1. The chain verifies to Config.Roots at the instant checked
//     (crypto/x509, any extended key usage), with the intermediates the
//     chain carries and Config.Intermediates.
//  2. The leaf has exactly one URI SAN, a SPIFFE ID
//     spiffe://<trust-domain>/worker/<pool>/<worker-id> (go-spiffe's
//     parser), in Config.TrustDomain if set, of a pool in
//     Config.AllowPools if set.
//  3. The revocation status at the instant checked, from Config.Status
//     (the CA's signed JSON status, NewHTTPStatus) or Config.CRLs. The
//     certificate is revoked at instant T if its revocation was recorded
//     at or before T, or if the reason is keyCompromise with an
//     invalidity date (RFC 5280 §5.3.2) at or before T. A revocation
//     for any other reason after T leaves what the worker signed before
//     it valid ("superseded" after signing is accepted).
//
// The conservative keyCompromise rule: a certificate revoked for
// keyCompromise WITHOUT an invalidity date is rejected at every instant,
// also before its revocation, as its key was compromised at an unknown
// time. With Status, checking a past instant therefore asks twice: the
// status at T, and the status now; if it is now revoked for
// keyCompromise with no invalidity date, or one at or before T, it is
// rejected (code "key_compromised"); with an invalidity date after T it
// is accepted. CRLs carry the same facts in their entries.
//
// Which instant: Certificate checks CertRequest.At (zero: now). Artifact
// checks the receipt's registered_at, a time the CA vouches for, so a
// signature made with a certificate that has since expired is still
// accepted; without a receipt it checks now, so the certificate must
// still be valid. A receipt whose expires_at has passed is rejected
// ("registration_expired"): the CA keeps a certificate's history only
// until then.
//
// CRLs are for "now" and for recent instants: the newest CRL signed by
// the leaf's issuer whose issuingDistributionPoint covers the leaf's
// cRLDistributionPoints is used, and it must not be past its nextUpdate.
// workerca drops an entry once a CRL issued after the certificate's
// notAfter has listed it, so a CRL issued after the certificate expired
// cannot prove it was not revoked: that is ErrUnavailable, and the
// status API is the way to check old signatures.
//
// Status answers are compact JWS (typ status.MediaType, alg
// fixed by the key) verified with the status keys: the JWKS of
// GET /v1/status/keys, fetched once over verified HTTPS
// (FetchStatusKeys) or shipped as a file, and pinned. The same keys sign
// receipts; the typ tells them apart. Over plain HTTP the answers are
// still safe to fetch, the keys never.
//
// Usage, for a service accepting worker mTLS:
//
//	keys, _ := verifier.FetchStatusKeys(ctx, "https://ca.example.com:8443", caClient)
//	status, _ := verifier.NewHTTPStatus("https://ca.example.com:8443", caClient, keys)
//	v, err := verifier.New(verifier.Config{
//		Roots: roots, StatusKeys: keys, Status: status,
//		TrustDomain: "workers.example.com", AllowPools: []string{"ci"},
//	})
//	res, err := v.Certificate(ctx, verifier.CertRequest{Chain: tlsState.PeerCertificates})
//	if err != nil {
//		// could not decide: refuse, retry later
//	}
//	if !res.Accepted {
//		log.Printf("refused %s: %s: %s", res.Serial, res.Code, res.Message)
//	}
//
// and for a release pipeline:
//
//	digest, _ := artifact.DigestFile("build.tar.gz")
//	res, err := v.Artifact(ctx, verifier.ArtifactRequest{Digest: digest, Signature: jws, Receipt: receipt})
package verifier
