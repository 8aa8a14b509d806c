// Package artifact is workerca's artifact signature format and its
// receipts.
//
// A worker signs the SHA-256 digest of an artifact it built as a compact
// JWS (RFC 7515): the payload is JSON {"sha256": "<64 lowercase hex>",
// "name": "<optional>"}, the protected header carries "alg" (the one
// algorithm of the worker key: ES256, ES384, EdDSA or RS256), "typ"
// (SignatureType) and "x5c" (the worker chain, leaf first, RFC 7515
// §4.1.6). Anyone holding the trust bundle can check it with any JWS
// library; docs/artifacts.md shows how with openssl.
//
// The CA answers a registration with a Receipt: a compact JWS by its
// status key over {sha256, serial, spiffe_id, registered_at, expires_at,
// signature_sha256}, so the signing time is vouched for by the CA and a
// verifier can check the chain and the revocation status at that time,
// long after the worker certificate expired.
//
// Typical use on a worker:
//
//	signer, chain, _ := artifact.LoadKeyPair("worker.key", "worker.crt")
//	jws, _ := artifact.SignFile("build.tar.gz", artifact.Signer{Key: signer, Chain: chain})
//
// and on a verifier:
//
//	sig, _ := artifact.Parse(jws)              // checks the JWS against the x5c leaf key
//	digest, _ := artifact.DigestFile("build.tar.gz")
//	if sig.Payload.SHA256 != digest { ... }
//	r, _ := artifact.ParseReceipt(receipt, statusKeys) // checks the CA's signature
//
// Package artifact does no I/O beyond reading the files it is named, and
// checks no trust: chains, SPIFFE IDs and revocation are package
// verifier's.
package artifact
