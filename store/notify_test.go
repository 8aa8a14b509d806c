package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// listenT runs s.ListenRevocations until the test ends and returns the
// notices it delivers.
func listenT(t *testing.T, s *store.Store) <-chan store.RevocationNotice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan store.RevocationNotice, 1024)
	done := make(chan error, 1)
	go func() { done <- s.ListenRevocations(ctx, func(n store.RevocationNotice) { ch <- n }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenRevocations returned %v, want nil once ctx is done", err)
		}
	})
	return ch
}

// nextNotice waits for the next notice.
func nextNotice(t *testing.T, ch <-chan store.RevocationNotice, what string) store.RevocationNotice {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no notice after 15 s", what)
		return store.RevocationNotice{}
	}
}

// sentinel saves a CRL of shard 99 numbered n and checks it is the next
// notice: every notice before it has been read, and none was unexpected.
func sentinel(t *testing.T, s *store.Store, ch <-chan store.RevocationNotice, n int64, what string) {
	t.Helper()
	if err := s.SaveCRL(ctxT(t), &store.CRL{Shard: 99, Number: n, ThisUpdate: epoch(), NextUpdate: epoch().Add(time.Hour), DER: []byte{0x30, 0x00}}); err != nil {
		t.Fatal(err)
	}
	got := nextNotice(t, ch, what)
	if want := []store.SavedCRL{{Shard: 99, Number: n}}; !slices.Equal(got.CRLs, want) || len(got.Serials) != 0 || got.Resync {
		t.Fatalf("%s: notice %+v, want only the sentinel CRL %v", what, got, want)
	}
}

func noticeSerials(n store.RevocationNotice) []string {
	var out []string
	for _, e := range n.Serials {
		out = append(out, e.Serial)
	}
	return out
}

// TestListenRevocations_SQLite: on SQLite there is nothing to listen to;
// ListenRevocations returns nil at once and never calls fn.
func TestListenRevocations_SQLite(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t, store.DriverSQLite)
	called := false
	if err := s.ListenRevocations(ctxT(t), func(store.RevocationNotice) { called = true }); err != nil || called {
		t.Fatalf("ListenRevocations = %v, fn called %v; want nil at once, fn never called", err, called)
	}
}

// TestListenRevocations follows what one schema's listener hears: a
// Resync first, then each committed revocation with its serials, shards
// and time, and each stored CRL; nothing for an idempotent, failed or
// stale write, nor for another schema's.
func TestListenRevocations(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config(t, store.DriverPostgres)
	s, other := storetest.OpenConfig(t, cfg), storetest.OpenConfig(t, cfg)
	elsewhere := storetest.Open(t, store.DriverPostgres)
	now := epoch().Truncate(time.Second)
	seedRevocation(t, s, now)
	seedRevocation(t, elsewhere, now)
	ch := listenT(t, s)
	if n := nextNotice(t, ch, "connect"); !n.Resync || len(n.Serials)+len(n.CRLs) != 0 {
		t.Fatalf("first notice %+v, want a bare Resync", n)
	}
	one := 1
	revoke := func(s *store.Store, r store.Revocation) error {
		r.At, r.Actor = now, "test"
		_, err := s.Revoke(ctxT(t), r)
		return err
	}
	for i, tc := range []struct {
		name  string
		act   func() error
		err   error
		quiet bool // no notice
		want  store.RevocationNotice
	}{
		{name: "ok/serial-with-shard", act: func() error { return revoke(other, store.Revocation{Serial: "01", Reason: 1}) },
			want: store.RevocationNotice{Serials: []store.RevokedSerial{{Serial: "01", Shard: &one, RevokedAt: now}}}},
		{name: "ok/already-revoked-is-quiet", act: func() error { return revoke(s, store.Revocation{Serial: "01", Reason: 1}) }, quiet: true},
		{name: "ok/unknown-serial-rolls-back-quietly", act: func() error { return revoke(s, store.Revocation{Serial: "ff", Reason: 1}) },
			err: store.ErrNotFound, quiet: true},
		{name: "ok/pool-lists-only-newly-revoked-and-shardless", act: func() error { return revoke(s, store.Revocation{Pool: "p", Reason: 5}) },
			want: store.RevocationNotice{Serials: []store.RevokedSerial{{Serial: "04", RevokedAt: now}}}},
		{name: "ok/other-schema-is-not-heard", act: func() error { return revoke(elsewhere, store.Revocation{Serial: "03", Reason: 1}) }, quiet: true},
		{name: "ok/crl-saved", act: func() error {
			return other.SaveCRL(ctxT(t), &store.CRL{Shard: 3, Number: 7, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{0x30, 0x00}})
		}, want: store.RevocationNotice{CRLs: []store.SavedCRL{{Shard: 3, Number: 7}}}},
		{name: "ok/stale-crl-is-quiet", act: func() error {
			return s.SaveCRL(ctxT(t), &store.CRL{Shard: 3, Number: 7, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{0x30, 0x00}})
		}, err: store.ErrStale, quiet: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.act(), tc.err)
			if tc.quiet {
				sentinel(t, s, ch, int64(i+1), tc.name)
				return
			}
			got := nextNotice(t, ch, tc.name)
			if got.Resync || !slices.Equal(got.CRLs, tc.want.CRLs) || len(got.Serials) != len(tc.want.Serials) {
				t.Fatalf("notice %+v, want %+v", got, tc.want)
			}
			for j, e := range got.Serials {
				w := tc.want.Serials[j]
				if e.Serial != w.Serial || !timeEq(e.RevokedAt, w.RevokedAt) || (e.Shard == nil) != (w.Shard == nil) || (e.Shard != nil && *e.Shard != *w.Shard) {
					t.Errorf("entry %d: %s shard %v at %v, want %s shard %v at %v", j, e.Serial, e.Shard, e.RevokedAt, w.Serial, w.Shard, w.RevokedAt)
				}
			}
		})
	}
}

// TestListenRevocations_Large revokes a pool at once: its certificates
// are listed over several notices, each under PostgreSQL's 8000-byte
// payload limit, or, past store.MaxNotifiedSerials, announced as one
// Resync.
func TestListenRevocations_Large(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		n      int
		resync bool
	}{
		{"ok/300-over-several-notices", 300, false},
		{"ok/max-listed", store.MaxNotifiedSerials, false},
		{"ok/past-max-one-resync", store.MaxNotifiedSerials + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, store.DriverPostgres)
			ctx := ctxT(t)
			now := epoch().Truncate(time.Second)
			// Serials as long as real ones (160 bits), a shard each.
			if err := store.ExecRaw(ctx, s, `INSERT INTO certificates (serial, worker_id, pool, not_before, not_after, der, issued_at, retain_until, crl_shard)
				SELECT 'f' || lpad(to_hex(g), 39, '0'), 'w-' || g, 'big', ?, ?, '\x3000'::bytea, ?, ?, g % 16 FROM generate_series(1, ?) AS g`,
				now.Add(-time.Minute), now.Add(time.Hour), now, now.Add(24*time.Hour), tc.n); err != nil {
				t.Fatal(err)
			}
			ch := listenT(t, s)
			if n := nextNotice(t, ch, "connect"); !n.Resync {
				t.Fatalf("first notice %+v, want Resync", n)
			}
			res, err := s.Revoke(ctx, store.Revocation{Pool: "big", Reason: 5, At: now, Actor: "test"})
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if len(res.Revoked) != tc.n {
				t.Fatalf("revoked %d, want %d", len(res.Revoked), tc.n)
			}
			if tc.resync {
				if n := nextNotice(t, ch, "revoke"); !n.Resync || len(n.Serials) != 0 {
					t.Fatalf("notice %v serials, resync %v; want one bare Resync", len(n.Serials), n.Resync)
				}
				sentinel(t, s, ch, 1, "after the Resync")
				return
			}
			got := map[string]bool{}
			notices := 0
			for len(got) < tc.n {
				n := nextNotice(t, ch, fmt.Sprintf("revoke, %d of %d serials heard", len(got), tc.n))
				notices++
				if n.Resync || len(n.CRLs) != 0 {
					t.Fatalf("notice %d: resync %v CRLs %v, want serials only", notices, n.Resync, n.CRLs)
				}
				for _, e := range n.Serials {
					if got[e.Serial] || e.Shard == nil || !timeEq(e.RevokedAt, now) {
						t.Fatalf("notice %d: %s heard twice (%v) or without shard or time: %+v", notices, e.Serial, got[e.Serial], e)
					}
					got[e.Serial] = true
				}
			}
			for _, c := range res.Revoked {
				if !got[c.Serial] {
					t.Fatalf("%s revoked but not heard", c.Serial)
				}
			}
			// ~100 bytes an entry, under 7900 bytes a notice.
			if min := tc.n * 100 / 7900; notices <= min {
				t.Errorf("%d serials in %d notices, want more than %d", tc.n, notices, min)
			}
			sentinel(t, s, ch, 1, "after the serials")
		})
	}
}

// TestListenRevocations_Reconnects ends the listener's connection: it
// reconnects, says Resync (what was sent meanwhile is lost), and hears
// what follows.
func TestListenRevocations_Reconnects(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config(t, store.DriverPostgres)
	s := storetest.OpenConfig(t, cfg)
	now := epoch().Truncate(time.Second)
	seedRevocation(t, s, now)
	ch := listenT(t, s)
	if n := nextNotice(t, ch, "connect"); !n.Resync {
		t.Fatalf("first notice %+v, want Resync", n)
	}
	for round := range 2 {
		if n := storetest.TerminateListeners(t, cfg); n != 1 {
			t.Fatalf("round %d: ended %d listening connections, want 1", round, n)
		}
		// Revoked while nobody listens: lost, hence the Resync.
		if _, err := s.Revoke(ctxT(t), store.Revocation{Serial: fmt.Sprintf("0%d", round+1), Reason: 1, At: now, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		for {
			n := nextNotice(t, ch, fmt.Sprintf("round %d: reconnect", round))
			if n.Resync {
				break
			}
			// The revocation may have reached the old connection before
			// it ended.
			if !slices.Equal(noticeSerials(n), []string{fmt.Sprintf("0%d", round+1)}) {
				t.Fatalf("round %d: notice %+v before the Resync", round, n)
			}
		}
		sentinel(t, s, ch, int64(round+1), fmt.Sprintf("round %d: after reconnecting", round))
	}
}
