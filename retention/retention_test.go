package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/workerca/workerca/retention"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var _ retention.Store = (*store.Store)(nil)

// certificate records a ledger row valid for a day from epoch whose
// retention ends at retainUntil.
func certificate(t *testing.T, st *store.Store, serial string, retainUntil time.Time) {
	t.Helper()
	err := st.RecordIssuance(t.Context(), store.Issuance{Certificate: &store.Certificate{
		Serial: serial, WorkerID: "w-" + serial, Pool: "default", NotBefore: epoch, NotAfter: epoch.Add(24 * time.Hour),
		DER: []byte{0x30}, IssuedAt: epoch, RetainUntil: retainUntil,
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		now := epoch.Add(10 * 24 * time.Hour)
		reg := prometheus.NewRegistry()
		p, err := retention.New(retention.Config{Store: st, Clock: func() time.Time { return now }, BatchSize: 2, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"01", "02", "03"} {
			certificate(t, st, s, epoch.Add(4*24*time.Hour))
		}
		certificate(t, st, "04", epoch.Add(20*24*time.Hour))

		res, err := p.Once(t.Context(), true, "test")
		if err != nil || res.Certificates != 3 {
			t.Fatalf("dry run: %+v, %v; want 3 certificates", res, err)
		}
		if _, err := st.Certificate(t.Context(), "01"); err != nil {
			t.Fatalf("dry run deleted: %v", err)
		}

		// Another holder of the lock (another replica) makes a pass skip.
		unlock, ok, err := st.TryLock(t.Context(), retention.LockName)
		if err != nil || !ok {
			t.Fatalf("TryLock: %v %v", ok, err)
		}
		if _, err := p.Once(t.Context(), false, "test"); !errors.Is(err, retention.ErrLocked) {
			t.Fatalf("locked: err = %v, want ErrLocked", err)
		}
		unlock()

		res, err = p.Once(t.Context(), false, "test")
		if err != nil || res.Certificates != 3 || res.Batches != 2 {
			t.Fatalf("prune: %+v, %v; want 3 certificates in 2 batches", res, err)
		}
		for s, want := range map[string]error{"01": store.ErrNotFound, "03": store.ErrNotFound, "04": nil} {
			if _, err := st.Certificate(t.Context(), s); !errors.Is(err, want) && (want != nil || err != nil) {
				t.Errorf("certificate %s: err = %v, want %v", s, err, want)
			}
		}
		for _, m := range []struct {
			name, label string
			want        float64
		}{
			{"workerca_pruned_rows_total", "certificates", 3}, // the dry run counts nothing
			{"workerca_pruned_rows_total", "artifacts", 0},
			{"workerca_prune_runs_total", "ok", 2},
			{"workerca_prune_runs_total", "locked", 1},
			{"workerca_prune_last_success_timestamp_seconds", "", float64(now.Unix())},
		} {
			if got := gathered(t, reg, m.name, m.label); got != m.want {
				t.Errorf("%s{%s} = %v, want %v", m.name, m.label, got, m.want)
			}
		}
	})
}

// gathered is the value of the metric name whose one label has value
// label ("" for an unlabeled metric).
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 && label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("%s{%s} not gathered", name, label)
	return 0
}

// TestRunStops: Run prunes at once and returns when its context ends.
func TestRunStops(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, store.DriverSQLite)
	certificate(t, st, "0a", epoch)
	p, err := retention.New(retention.Config{Store: st, Interval: time.Hour, Clock: func() time.Time { return epoch.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	for i := 0; ; i++ {
		if _, err := st.Certificate(t.Context(), "0a"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if i > 500 {
			t.Fatal("Run did not prune")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, store.DriverSQLite)
	for _, tc := range []struct {
		name string
		cfg  retention.Config
	}{
		{"fail/no-store", retention.Config{}},
		{"fail/negative-interval", retention.Config{Store: st, Interval: -time.Second}},
		{"fail/negative-batch", retention.Config{Store: st, BatchSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := retention.New(retention.Config{Store: st, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.New(retention.Config{Store: st, Registerer: reg}); err == nil {
		t.Error("fail/metrics-registered-twice: accepted")
	}
}
