package status_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/workerca/workerca/revocation/status"
)

func TestReasonNames(t *testing.T) {
	t.Parallel()
	for r, want := range map[status.Reason]string{
		status.Unspecified: "unspecified", status.KeyCompromise: "keyCompromise", status.CACompromise: "cACompromise",
		status.AffiliationChanged: "affiliationChanged", status.Superseded: "superseded",
		status.CessationOfOperation: "cessationOfOperation", status.PrivilegeWithdrawn: "privilegeWithdrawn",
		status.Reason(6): "reason(6)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d) = %q, want %q", int(r), got, want)
		}
	}
}

// TestAnswerJSON pins the wire names relying parties read.
func TestAnswerJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	b, err := json.Marshal(status.Answer{Serial: "0a", Status: status.Revoked, RevokedAt: &at, Reason: "keyCompromise", InvalidityDate: &at, ThisUpdate: at, NextUpdate: at, At: at})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"serial":"0a","status":"revoked","revoked_at":"2026-11-01T12:00:00Z","reason":"keyCompromise","invalidity_date":"2026-11-01T12:00:00Z","this_update":"2026-11-01T12:00:00Z","next_update":"2026-11-01T12:00:00Z","at":"2026-11-01T12:00:00Z"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}
