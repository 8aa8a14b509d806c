// Package ca is workerca's signing library: key generation and loading,
// the root and intermediate hierarchy, certificate profiles rendered from
// go.step.sm/crypto/x509util templates, and the Issuer that signs worker
// certificates.
//
// Package ca knows nothing of storage or the network. It is handed an
// already-verified identity and a CSR, and returns a signed certificate; the
// caller (package enroll) records it in the ledger before returning it to
// anyone.
//
// Typical use:
//
//	signer, _ := ca.LoadSigner(ctx, "intermediate.key", nil)
//	issuer, _ := ca.New(ca.Config{Intermediate: intCert, Signer: signer})
//	profile, _ := ca.NewProfile(ca.ProfileConfig{Name: "default", TTL: 24 * time.Hour})
//	cert, _ := issuer.Issue(ca.IssueRequest{CSR: csr, Profile: profile, Identity: id})
package ca
