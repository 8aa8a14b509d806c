package enroll_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store/storetest"
)

// benchService is an enrollment service over a real store of driver with
// one pool "bench" accepting tokens and server certificates.
func benchService(b *testing.B, driver string) *enroll.Service {
	b.Helper()
	h := catest.NewHierarchy(b, catest.Epoch.Add(-time.Hour))
	clk := func() time.Time { return catest.Epoch }
	p, err := ca.NewProfile(ca.ProfileConfig{Name: "bench", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := enroll.New(enroll.Config{
		Issuer: h.Issuer(b, ca.Config{Clock: clk}), Ledger: storetest.Open(b, driver), TrustDomain: "workers.example.com",
		Pools: []enroll.Pool{{Profile: p, Methods: []string{enroll.MethodToken}}}, Clock: clk,
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkIssueDurable measures one issuance through enroll.Service.Issue
// with the ledger row committed before it returns (the durable pipeline),
// per database. The identity is already verified, as after an attestor.
func BenchmarkIssueDurable(b *testing.B) {
	for _, driver := range storetest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			svc := benchService(b, driver)
			csr := catest.CSR(b, catest.Key(b, ca.KeyP256))
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				_, err := svc.Issue(ctx, enroll.Request{
					CSR:      csr,
					Identity: ca.Identity{Pool: "bench", WorkerID: fmt.Sprintf("w%d", i), Method: enroll.MethodToken, EnrollmentID: "bench"},
					Actor:    "bench",
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnrollToken measures the bare-metal path per database: mint a
// one-time token (one ledger write) and enroll with it (signature, token
// consumption and ledger row in one transaction). Each iteration is both
// steps, as an operator and a host would do them.
func BenchmarkEnrollToken(b *testing.B) {
	for _, driver := range storetest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			svc := benchService(b, driver)
			csr := catest.CSR(b, catest.Key(b, ca.KeyP256))
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				tok, err := svc.CreateToken(ctx, enroll.TokenRequest{Pool: "bench", WorkerID: fmt.Sprintf("w%d", i), TTL: time.Hour, CreatedBy: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := svc.EnrollToken(ctx, tok.Value, csr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
