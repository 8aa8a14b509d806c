// Package registry is the CA side of artifact signatures: it checks a
// worker's signature against the certificate the worker presented,
// records the registration in the ledger (raising the certificate's
// retention to the registration's expiry), and answers with a receipt
// signed by the status key.
//
// The HTTP edge (package web) has already verified the worker's mTLS
// certificate and checked it in the ledger (recorded, unexpired,
// unrevoked); the ledger re-checks "unrevoked" in the registration's
// transaction, so a revocation cannot slip between check and record.
//
//	reg, _ := registry.New(registry.Config{Ledger: st, ReceiptKey: statusKey})
//	r, _ := reg.Register(ctx, registry.Request{Signature: jws, ExpiresAt: t, Caller: cert, Worker: row})
//	fmt.Println(r.Artifact.Receipt)
package registry
