// Package revocation publishes workerca's revocation state.
//
// BuildCRL is a pure encoder: given the intermediate, its key, a CRL
// number, the update times, the shard's distribution point URI and the
// revoked entries, it returns a signed v2 CRL (RFC 5280 §5) and nothing
// else: no clock, no storage, no network. Which certificates go on which
// shard's CRL, and when, is decided by the caller.
//
// Every CRL carries a critical issuingDistributionPoint (RFC 5280 §5.2.5)
// whose only fullName is the shard's URI, byte for byte the string the
// shard's certificates carry in their cRLDistributionPoints, and
// onlyContainsUserCerts, as the CRLs list end-entity certificates only.
// Relying parties that check CRL scope, such as OpenSSL, then accept a
// shard's CRL for that shard's certificates alone.
//
// Service revokes certificates and serves their status: CRLs built in
// the background and saved in the ledger, OCSP answers pre-signed and
// cached in memory, signed JSON status. Several Services (replicas) may
// share a PostgreSQL ledger (SharedLedger): a revocation through one
// drops the cached OCSP answers of every other when the ledger's notice
// reaches it, and the one replica holding the lease CRLLeaseName builds
// the CRLs that all of them serve.
//
// Usage:
//
//	der, err := revocation.BuildCRL(revocation.CRLRequest{
//		Issuer:            intermediate,
//		Signer:            intermediateKey,
//		Number:            big.NewInt(42),
//		ThisUpdate:        now,
//		NextUpdate:        now.Add(24 * time.Hour),
//		DistributionPoint: ca.CRLShardURL(baseURL, shard),
//		Entries: []revocation.CRLEntry{
//			{Serial: serial, RevokedAt: revokedAt, Reason: 1, InvalidityDate: &compromisedAt},
//		},
//	})
//	if errors.Is(err, revocation.ErrInvalidCRL) {
//		// the request was wrong; nothing was signed
//	}
package revocation
