package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// TestTimePrecision proves that SQL comparisons on stored times agree with
// Go's time order to the microsecond on both databases, including values
// whose fractions differ in length (.1 / .12 / .000001 / whole seconds),
// values given in another time zone, and nanoseconds (truncated, never
// rounded up).
func TestTimePrecision(t *testing.T) {
	t.Parallel()
	base := time.Date(2031, 6, 7, 8, 9, 10, 0, time.UTC) // a whole second
	east := time.FixedZone("UTC+5", 5*3600)
	west := time.FixedZone("UTC-7", -7*3600)
	// Offsets from base; each becomes one worker's NotAfter.
	notAfters := []time.Time{
		base.Add(-time.Microsecond),
		base,
		base.Add(time.Microsecond),
		base.Add(2 * time.Microsecond),
		base.Add(9 * time.Microsecond),
		base.Add(10 * time.Microsecond),
		base.Add(100 * time.Millisecond),                  // .1
		base.Add(120 * time.Millisecond),                  // .12
		base.Add(120*time.Millisecond + time.Microsecond), // .120001
		base.Add(999999 * time.Microsecond),               // .999999
		base.Add(time.Second),                             // next whole second
		base.Add(time.Second + time.Microsecond).In(east),
		base.Add(-time.Hour + 500*time.Millisecond).In(west), // earlier, though "later" as local text
		base.Add(3*time.Hour + 999).In(west),                 // nanoseconds: stored as +3h exactly
	}
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		stored := make([]time.Time, len(notAfters))
		for i, na := range notAfters {
			c := testCert(fmt.Sprintf("%02x", i), fmt.Sprintf("w%02d", i), "p", base)
			c.NotBefore = base.Add(-time.Hour)
			c.NotAfter = na
			if err := s.RecordIssuance(ctx, store.Issuance{Certificate: c, Now: base}); err != nil {
				t.Fatal(err)
			}
			stored[i] = na.UTC().Truncate(time.Microsecond)
		}

		t.Run("ok/read-back-equal-utc", func(t *testing.T) {
			for i := range notAfters {
				c, err := s.Certificate(ctx, fmt.Sprintf("%02x", i))
				if err != nil {
					t.Fatal(err)
				}
				if !c.NotAfter.Equal(stored[i]) || c.NotAfter.Location() != time.UTC {
					t.Errorf("NotAfter[%d] = %v (%v), want %v UTC", i, c.NotAfter, c.NotAfter.Location(), stored[i])
				}
			}
		})

		t.Run("ok/nanoseconds-truncated-not-rounded", func(t *testing.T) {
			c, err := s.Certificate(ctx, fmt.Sprintf("%02x", len(notAfters)-1))
			if err != nil {
				t.Fatal(err)
			}
			if want := base.Add(3 * time.Hour); !c.NotAfter.Equal(want) {
				t.Errorf("NotAfter = %v, want %v", c.NotAfter, want)
			}
		})

		// Probe every stored instant and its neighbours one microsecond
		// away: the database's count of not_after > probe must equal Go's.
		var probes []time.Time
		for _, st := range stored {
			probes = append(probes, st.Add(-time.Microsecond), st, st.Add(time.Microsecond))
		}
		t.Run("ok/comparisons-match-go", func(t *testing.T) {
			for _, p := range probes {
				want := 0
				for _, st := range stored {
					if st.After(p) {
						want++
					}
				}
				for _, loc := range []*time.Location{time.UTC, east, west} {
					got, err := s.CountActiveWorkers(ctx, "p", p.In(loc))
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Errorf("CountActiveWorkers(%v) = %d, want %d", p.In(loc), got, want)
					}
				}
			}
		})

		t.Run("ok/order-by-matches-go", func(t *testing.T) {
			rows, err := store.QueryStrings(ctx, s, "SELECT serial FROM certificates ORDER BY not_after, serial")
			if err != nil {
				t.Fatal(err)
			}
			idx := make([]int, len(stored))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int { return stored[a].Compare(stored[b]) })
			for pos, i := range idx {
				if want := fmt.Sprintf("%02x", i); rows[pos] != want {
					t.Fatalf("ORDER BY not_after = %v, want order %v", rows, idx)
				}
			}
		})

		if s.Driver() == store.DriverSQLite {
			t.Run("ok/sqlite-stores-fixed-width-utc-text", func(t *testing.T) {
				rows, err := store.QueryStrings(ctx, s, "SELECT CAST(not_after AS TEXT) FROM certificates")
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					if len(r) != len("2006-01-02 15:04:05.000000+00:00") || !strings.HasSuffix(r, "+00:00") {
						t.Errorf("stored time %q is not fixed-width UTC", r)
					}
				}
			})
		}
	})
}
