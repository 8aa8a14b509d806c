package store_test

import (
	"testing"
	"time"

	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

func TestAuditEvents(t *testing.T) {
	t.Parallel()
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		t.Parallel()
		ctx := ctxT(t)
		now := epoch()
		// Added out of time order, with a tie at now+1µs broken by id.
		events := []store.AuditEvent{
			{At: now.Add(time.Microsecond), Actor: "system", Action: "a.second", Target: "t2", Detail: `{"n":2}`},
			{At: now, Actor: "cli", Action: "a.first", Target: "t1"},
			{At: now.Add(time.Microsecond), Actor: "system", Action: "a.third", Target: "t3"},
			{At: now.Add(time.Second), Actor: "apikey:k1", Action: "a.fourth", Target: "t4"},
		}
		for _, e := range events {
			if err := s.AddAudit(ctx, e); err != nil {
				t.Fatalf("AddAudit: %v", err)
			}
		}
		tests := []struct {
			name  string
			limit int
			want  []string
		}{
			{"ok/all-newest-first", 0, []string{"a.fourth", "a.third", "a.second", "a.first"}},
			{"ok/negative-limit-is-all", -1, []string{"a.fourth", "a.third", "a.second", "a.first"}},
			{"ok/limit", 2, []string{"a.fourth", "a.third"}},
			{"ok/limit-above-count", 10, []string{"a.fourth", "a.third", "a.second", "a.first"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.AuditEvents(ctx, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var actions []string
				for _, e := range got {
					actions = append(actions, e.Action)
				}
				if len(actions) != len(tc.want) {
					t.Fatalf("actions = %v, want %v", actions, tc.want)
				}
				for i := range actions {
					if actions[i] != tc.want[i] {
						t.Fatalf("actions = %v, want %v", actions, tc.want)
					}
				}
			})
		}
		t.Run("ok/fields-and-ids", func(t *testing.T) {
			got, err := s.AuditEvents(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int64]bool{}
			for _, e := range got {
				if e.ID <= 0 || seen[e.ID] {
					t.Errorf("bad or repeated id %d", e.ID)
				}
				seen[e.ID] = true
			}
			second := got[2]
			if second.Actor != "system" || second.Target != "t2" || second.Detail != `{"n":2}` || !timeEq(second.At, now.Add(time.Microsecond)) {
				t.Errorf("event = %+v", second)
			}
		})
	})
}
