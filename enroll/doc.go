// Package enroll is workerca's registration authority. It decides whether
// a worker gets a certificate and runs the issuance flow:
//
//	evidence → verified identity → pool policy → ca.Issuer → ledger → caller
//
// Attestors (today: one-time tokens) turn evidence into a ca.Identity;
// they never sign. The Service asks package ca to sign and records the
// ledger row through its Ledger before it returns anything, so no
// certificate leaves the CA unrecorded: if the write fails the caller gets
// ErrLedgerUnavailable and no certificate.
//
//	svc, _ := enroll.New(enroll.Config{Issuer: iss, Ledger: st, TrustDomain: "workers.example.com", Pools: pools})
//	tok, _ := svc.CreateToken(ctx, enroll.TokenRequest{Pool: "default", WorkerID: "host-01", TTL: time.Hour})
//	res, err := svc.EnrollToken(ctx, tok.Value, csrPEM)
package enroll
