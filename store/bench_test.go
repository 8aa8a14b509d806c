package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// BenchmarkRecordIssuance measures one token-less issuance with the pool
// cap checked and an audit event, per driver.
func BenchmarkRecordIssuance(b *testing.B) {
	for _, driver := range storetest.Drivers(b) {
		b.Run(driver, func(b *testing.B) {
			s := storetest.Open(b, driver)
			ctx := context.Background()
			now := epoch()
			i := 0
			for b.Loop() {
				i++
				serial := fmt.Sprintf("%016x", i)
				err := s.RecordIssuance(ctx, store.Issuance{
					Certificate:      testCert(serial, fmt.Sprintf("w%d", i%100), "p", now),
					MaxActiveWorkers: 1000,
					Now:              now,
					Audit:            store.AuditEvent{Actor: "system", Action: "certificate.issued", Target: serial},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
