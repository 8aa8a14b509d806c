package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// RevocationNotice tells the replicas sharing a PostgreSQL ledger that
// its revocation state changed: certificates were revoked, CRLs were
// saved, or (Resync) anything may have changed. ListenRevocations
// delivers them.
type RevocationNotice struct {
	// Serials are certificates that a Revoke just revoked.
	Serials []RevokedSerial `json:"revoked,omitempty"`
	// CRLs are CRLs that a SaveCRL just stored.
	CRLs []SavedCRL `json:"crls,omitempty"`
	// Resync means notices may have been missed, or a revocation was too
	// large to list: drop whatever was derived from the revocation state
	// (cached OCSP answers, CRLs) and read it again.
	Resync bool `json:"resync,omitempty"`
}

// RevokedSerial is one certificate in a RevocationNotice.
type RevokedSerial struct {
	// Serial is the certificate's ledger serial (lowercase hex).
	Serial string `json:"serial"`
	// Shard is its recorded CRL shard, or nil for a certificate recorded
	// without one (the caller places it by serial).
	Shard *int `json:"shard,omitempty"`
	// RevokedAt is the recorded revocation time.
	RevokedAt time.Time `json:"revoked_at"`
}

// SavedCRL is one CRL in a RevocationNotice.
type SavedCRL struct {
	// Shard is the CRL's shard.
	Shard int `json:"shard"`
	// Number is its CRL number, now the shard's latest.
	Number int64 `json:"number"`
}

// revocationChannelSQL names the PostgreSQL channel of a schema's
// revocation notices. NOTIFY channels belong to the database, not to a
// schema: the name is derived from the current schema, so stores sharing
// a server but not a schema do not hear each other. It is 53 bytes, under
// the 63 a channel name may have.
const revocationChannelSQL = `'workerca_revocations_' || md5(COALESCE(current_schema(), ''))`

// Notice limits. PostgreSQL refuses a NOTIFY payload of 8000 bytes or
// more; a revocation is listed over several notices of at most
// maxNoticePayload bytes, and one of more than maxNotifiedSerials
// certificates is announced as a single Resync instead (about 50
// notices' worth).
const (
	maxNoticePayload   = 7900
	maxNotifiedSerials = 4096
)

// resyncPayload is the notice of a revocation too large to list.
const resyncPayload = `{"resync":true}`

// notifyRevoked sends, within tx on PostgreSQL, the notices listing the
// certificates a Revoke just revoked. PostgreSQL delivers them when tx
// commits, and never if it rolls back.
func (s *Store) notifyRevoked(tx *gorm.DB, revoked []Certificate) error {
	if s.driver != DriverPostgres || len(revoked) == 0 {
		return nil
	}
	payloads, err := revokedPayloads(revoked)
	if err != nil {
		return fmt.Errorf("store: revoke: notify: %w", err)
	}
	list, err := json.Marshal(payloads)
	if err != nil {
		return fmt.Errorf("store: revoke: notify: %w", err)
	}
	if err := tx.Exec(`SELECT pg_notify(`+revocationChannelSQL+`, p) FROM json_array_elements_text(CAST(? AS json)) AS p`, string(list)).Error; err != nil {
		return fmt.Errorf("store: revoke: notify: %w", err)
	}
	return nil
}

// revokedPayloads encodes the notices listing revoked certificates, each
// under maxNoticePayload bytes, or the Resync notice when they are more
// than maxNotifiedSerials.
func revokedPayloads(revoked []Certificate) ([]string, error) {
	if len(revoked) > maxNotifiedSerials {
		return []string{resyncPayload}, nil
	}
	const open, end = `{"revoked":[`, `]}`
	var out []string
	var b bytes.Buffer
	for _, c := range revoked {
		if c.RevokedAt == nil {
			return nil, fmt.Errorf("certificate %s is not revoked", c.Serial)
		}
		e, err := json.Marshal(RevokedSerial{Serial: c.Serial, Shard: c.CRLShard, RevokedAt: c.RevokedAt.UTC()})
		if err != nil {
			return nil, err
		}
		if b.Len() > 0 && b.Len()+1+len(e)+len(end) > maxNoticePayload {
			b.WriteString(end)
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() == 0 {
			b.WriteString(open)
		} else {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	if b.Len() > 0 {
		b.WriteString(end)
		out = append(out, b.String())
	}
	return out, nil
}

// Listener timing. The listener's connection is checked after
// listenIdle without a notice, so a connection the network silently
// dropped is noticed within about listenIdle + listenTimeout; reconnects
// back off from listenRetryMin to listenRetryMax.
const (
	listenIdle     = 30 * time.Second
	listenTimeout  = 10 * time.Second
	listenRetryMin = 250 * time.Millisecond
	listenRetryMax = 30 * time.Second
)

// ListenRevocations calls fn with each RevocationNotice of this database
// and schema, in order, until ctx is done; it then returns nil. fn runs
// on ListenRevocations' goroutine and must return quickly.
//
// On PostgreSQL it holds a connection of its own (outside the pool, on
// which it runs nothing but LISTEN) and LISTENs on the schema's channel.
// Every Revoke that revokes a certificate and every SaveCRL that stores a
// CRL sends a notice on it when its transaction commits. Notices sent
// while no connection listens are lost, so after every connect, the
// first one included, fn gets a Resync notice before any other. A lost
// connection is retried after 250 ms, then with a backoff doubling up to
// 30 s, without end; failures are logged as warnings.
//
// On SQLite, which one process uses, there is nothing to listen to: it
// returns nil at once and never calls fn. The process's own Revoke
// callers know what they revoked.
func (s *Store) ListenRevocations(ctx context.Context, fn func(RevocationNotice)) error {
	if s.driver != DriverPostgres {
		return nil
	}
	delay := listenRetryMin
	for {
		listened, err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			delay = listenRetryMin
		}
		s.log.WarnContext(ctx, "store: revocation listener lost its connection; reconnecting",
			"error", err, "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, listenRetryMax)
	}
}

// listen connects, LISTENs, sends fn a Resync notice, then the notices
// until the connection fails or ctx is done. listened reports whether it
// got as far as LISTEN.
func (s *Store) listen(ctx context.Context, fn func(RevocationNotice)) (listened bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.dsn)
	if err != nil {
		return false, fmt.Errorf("store: listen: connect: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	var channel string
	if err := conn.QueryRow(cctx, `SELECT `+revocationChannelSQL).Scan(&channel); err != nil {
		return false, fmt.Errorf("store: listen: %w", err)
	}
	listen := `LISTEN ` + pgx.Identifier{channel}.Sanitize()
	if _, err := conn.Exec(cctx, listen); err != nil {
		return false, fmt.Errorf("store: listen: %w", err)
	}
	fn(RevocationNotice{Resync: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if n != nil {
			fn(s.decodeNotice(ctx, n.Payload))
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return true, nil
		case wctx.Err() != nil && !conn.IsClosed():
			// Idle: check the connection still answers. LISTEN again is
			// a no-op that keeps the connection's last statement a
			// LISTEN, for whoever looks at pg_stat_activity.
			pctx, cancel := context.WithTimeout(ctx, listenTimeout)
			_, err := conn.Exec(pctx, listen)
			cancel()
			if err != nil {
				return true, fmt.Errorf("store: listen: idle check: %w", err)
			}
		default:
			return true, fmt.Errorf("store: listen: %w", err)
		}
	}
}

// decodeNotice reads a notice's payload. One it cannot read, such as from
// a newer program, is taken as a Resync: safe, if costly.
func (s *Store) decodeNotice(ctx context.Context, payload string) RevocationNotice {
	var n RevocationNotice
	if err := json.Unmarshal([]byte(payload), &n); err != nil || (len(n.Serials) == 0 && len(n.CRLs) == 0 && !n.Resync) {
		s.log.WarnContext(ctx, "store: unreadable revocation notice; resynchronizing", "error", err, "bytes", len(payload))
		return RevocationNotice{Resync: true}
	}
	for i := range n.Serials {
		n.Serials[i].RevokedAt = n.Serials[i].RevokedAt.UTC()
	}
	return n
}
