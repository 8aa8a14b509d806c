package agent_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/syncbuf"
)

// newAgent makes an agent for ca writing into a fresh directory.
func newAgent(t *testing.T, ca *devca.CA, cfg agent.Config) *agent.Agent {
	t.Helper()
	cfg.CAURL = ca.URL
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "worker")
	}
	if cfg.Method == "" {
		cfg.Method = agent.MethodToken
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
	}
}

func requireNoFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (stat: %v)", filepath.Base(path), err)
	}
}

func TestEnrollToken(t *testing.T) {
	t.Parallel()
	ca := devca.Start(t, workercaBin, nil)
	pin := agent.SPKIPin(ca.Root)
	wrongPin := "sha256:" + strings.Repeat("ab", 32)

	t.Run("fail/wrong-pin-sends-nothing", func(t *testing.T) {
		tok := ca.Token(t, "host-pin")
		a := newAgent(t, ca, agent.Config{Pin: wrongPin, TokenFile: tok})
		_, err := a.Enroll(t.Context())
		if !errors.Is(err, agent.ErrPinMismatch) || !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("Enroll with a wrong pin: %v, want ErrPinMismatch and ErrPermanent", err)
		}
		for _, f := range []string{agent.FileBundle, agent.FileKey, agent.FileCert} {
			if _, err := os.Stat(filepath.Join(a.Dir(), f)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s written after a pin mismatch (stat: %v)", f, err)
			}
		}
		// The token was never sent: it still enrolls with the right pin.
		b := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok})
		if _, err := b.Enroll(t.Context()); err != nil {
			t.Fatalf("the token no longer works after the refused attempt: %v", err)
		}
	})

	t.Run("ok/first-enrollment-with-pin", func(t *testing.T) {
		tok := ca.Token(t, "host-01")
		a := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok})
		cert, err := a.Enroll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cert.SPIFFEID(), "spiffe://dev.workerca.test/worker/default/host-01"; got != want {
			t.Errorf("SPIFFE ID %q, want %q", got, want)
		}
		requireMode(t, filepath.Join(a.Dir(), agent.FileKey), 0o600)
		requireMode(t, filepath.Join(a.Dir(), agent.FileCert), 0o644)
		for _, f := range []string{agent.FileChain, agent.FileBundle} {
			requireMode(t, filepath.Join(a.Dir(), f), 0o644)
		}
		tc, err := agent.LoadCertificate(a.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if !tc.Leaf.Equal(cert.Leaf) || len(tc.Certificate) != 2 {
			t.Errorf("chain.pem: %d certificates, leaf matches: %v", len(tc.Certificate), tc.Leaf.Equal(cert.Leaf))
		}
		bundle, _ := os.ReadFile(filepath.Join(a.Dir(), agent.FileBundle))
		if blk, _ := pem.Decode(bundle); blk == nil || !bytes.Equal(blk.Bytes, ca.Root.Raw) {
			t.Error("bundle.pem does not start with the pinned root")
		}
		// Once enrolled the kept bundle is the trust anchor: no pin needed.
		b := newAgent(t, ca, agent.Config{Dir: a.Dir(), TokenFile: tok})
		if _, err := b.Renew(t.Context()); err != nil {
			t.Fatalf("Renew with the kept bundle and no pin: %v", err)
		}
	})

	t.Run("fail/token-used-says-what-to-do", func(t *testing.T) {
		tok := ca.Token(t, "host-02")
		if _, err := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok}).Enroll(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, err := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok}).Enroll(t.Context())
		var se *agent.ServerError
		if !errors.As(err, &se) || se.Code != "token_used" || !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("second use of a token: %v, want a permanent token_used", err)
		}
		if !strings.Contains(err.Error(), "workerca token create") || !strings.Contains(err.Error(), tok) {
			t.Errorf("message does not say what to do: %v", err)
		}
	})

	t.Run("fail/no-pin-no-bundle", func(t *testing.T) {
		_, err := newAgent(t, ca, agent.Config{TokenFile: ca.Token(t, "host-03")}).Enroll(t.Context())
		if !errors.Is(err, agent.ErrNoTrust) || !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("Enroll without pin or bundle: %v, want ErrNoTrust", err)
		}
	})

	// A crash between the renames of an install leaves the new chain with
	// the old key.pem and the new key in key.pem.next (docs/agent.md,
	// Files): the next load completes the install, so Renew presents the
	// new certificate with its key.
	t.Run("ok/renew-completes-an-interrupted-install", func(t *testing.T) {
		a := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: ca.Token(t, "host-crash")})
		if _, err := a.Enroll(t.Context()); err != nil {
			t.Fatal(err)
		}
		b := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: ca.Token(t, "host-crash")})
		next, err := b.Enroll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for from, to := range map[string]string{agent.FileKey: "key.pem.next", agent.FileChain: agent.FileChain, agent.FileCert: agent.FileCert} {
			data, err := os.ReadFile(filepath.Join(b.Dir(), from))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(a.Dir(), to), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Renew(t.Context()); err != nil {
			t.Fatalf("Renew after an interrupted install: %v", err)
		}
		requireNoFile(t, filepath.Join(a.Dir(), "key.pem.next"))
		tc, err := agent.LoadCertificate(a.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if tc.Leaf.Equal(next.Leaf) || tc.Leaf.URIs[0].String() != next.SPIFFEID() {
			t.Errorf("after Renew: %s serial %x, want a renewal of %s serial %x", tc.Leaf.URIs[0], tc.Leaf.SerialNumber, next.SPIFFEID(), next.Leaf.SerialNumber)
		}
	})

	t.Run("fail/renew-revoked-is-permanent", func(t *testing.T) {
		a := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: ca.Token(t, "host-04")})
		cert, err := a.Enroll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ca.Revoke(t, cert.Leaf)
		_, err = a.Renew(t.Context())
		var se *agent.ServerError
		if !errors.As(err, &se) || se.Code != "certificate_revoked" || !errors.Is(err, agent.ErrPermanent) || errors.Is(err, agent.ErrReattest) {
			t.Fatalf("renewing a revoked certificate: %v, want permanent certificate_revoked", err)
		}
	})
}

// recordingAfter fires after min(d, cap) and records each d asked for.
type recordingAfter struct {
	mu    sync.Mutex
	asked []time.Duration
	cap   time.Duration
}

func (r *recordingAfter) After(d time.Duration) <-chan time.Time {
	r.mu.Lock()
	r.asked = append(r.asked, d)
	r.mu.Unlock()
	return time.After(min(d, r.cap))
}

// TestRunRenewsAtomically runs the agent against a pool whose
// certificates live two minutes, with waits shortened, while a reader
// loads the files over and over: every renewal happens before expiry,
// and the reader never sees a partial file or a key that does not match
// its certificate.
func TestRunRenewsAtomically(t *testing.T) {
	t.Parallel()
	ca := devca.Start(t, workercaBin, func(pool map[string]any) { pool["ttl"] = "1m" })
	a0 := newAgent(t, ca, agent.Config{Pin: agent.SPKIPin(ca.Root), TokenFile: ca.Token(t, "host-run")})
	first, err := a0.Enroll(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var renewals atomic.Int32
	var serials sync.Map
	after := &recordingAfter{cap: 30 * time.Millisecond}
	a := newAgent(t, ca, agent.Config{Dir: a0.Dir(), TokenFile: "/nonexistent", After: after.After,
		OnRenew: func() error {
			tc, err := agent.LoadCertificate(a0.Dir())
			if err != nil {
				return err
			}
			if tc.Leaf.NotBefore.After(first.Leaf.NotAfter) {
				t.Errorf("renewed after the first certificate expired")
			}
			serials.Store(tc.Leaf.SerialNumber.String(), true)
			if renewals.Add(1) == 8 {
				cancel()
			}
			return nil
		}})

	readerDone := make(chan struct{})
	var reads atomic.Int32
	go func() {
		defer close(readerDone)
		for ctx.Err() == nil {
			for _, f := range []string{agent.FileKey, agent.FileCert, agent.FileChain, agent.FileBundle} {
				b, err := os.ReadFile(filepath.Join(a0.Dir(), f))
				if err != nil {
					t.Errorf("reading %s: %v", f, err)
					return
				}
				if err := wholePEM(b); err != nil {
					t.Errorf("%s read half-written: %v", f, err)
					return
				}
			}
			if _, err := agent.LoadCertificate(a0.Dir()); err != nil {
				t.Errorf("LoadCertificate during renewals: %v", err)
				return
			}
			reads.Add(1)
		}
	}()
	if err := a.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	<-readerDone
	if n := renewals.Load(); n < 8 {
		t.Fatalf("%d renewals, want 8", n)
	}
	n := 0
	serials.Range(func(any, any) bool { n++; return true })
	if n != 8 {
		t.Errorf("%d distinct serials over 8 renewals", n)
	}
	if reads.Load() == 0 {
		t.Error("the reader never completed a read")
	}
	// The first wait asked for is about two thirds of the lifetime
	// (2 minutes: 1m TTL + 1m backdate), less jitter, less time spent.
	after.mu.Lock()
	w := after.asked[0]
	after.mu.Unlock()
	if life := first.Leaf.NotAfter.Sub(first.Leaf.NotBefore); w > life*2/3-time.Minute || w < life*2/3-life/10-time.Minute-10*time.Second {
		t.Errorf("first renewal wait %s; lifetime %s, issued a minute after notBefore", w, life)
	}
}

// wholePEM checks b is complete PEM: every block decodes and parses and
// nothing trails.
func wholePEM(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty")
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		var err error
		switch blk.Type {
		case "CERTIFICATE":
			_, err = x509.ParseCertificate(blk.Bytes)
		case "PRIVATE KEY":
			_, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		default:
			err = errors.New("unexpected block " + blk.Type)
		}
		if err != nil {
			return err
		}
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

// TestRunReattestsAfterRenewalCap: a pool whose renewal chain may run
// one second. With the used token still in the token file, Run stops with
// a permanent, actionable error; with a fresh token there, Run attests
// again and carries on.
func TestRunReattestsAfterRenewalCap(t *testing.T) {
	t.Parallel()
	ca := devca.Start(t, workercaBin, func(pool map[string]any) { pool["ttl"] = "1m"; pool["max_renewal_chain"] = "1s" })
	pin := agent.SPKIPin(ca.Root)

	t.Run("fail/used-token", func(t *testing.T) {
		tok := ca.Token(t, "host-cap-1")
		a := newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok, After: (&recordingAfter{cap: 100 * time.Millisecond}).After})
		if _, err := a.Enroll(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := a.Run(ctx)
		if !errors.Is(err, agent.ErrPermanent) {
			t.Fatalf("Run: %v, want a permanent failure", err)
		}
		for _, want := range []string{"reattestation_required", "token_used", tok, "workerca token create"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Run's error does not mention %q: %v", want, err)
			}
		}
	})

	t.Run("ok/fresh-token", func(t *testing.T) {
		tok := ca.Token(t, "host-cap-2")
		var logs syncbuf.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var a *agent.Agent
		var renewed atomic.Int32
		a = newAgent(t, ca, agent.Config{Pin: pin, TokenFile: tok,
			After:  (&recordingAfter{cap: 100 * time.Millisecond}).After,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			OnRenew: func() error {
				if strings.Contains(logs.String(), "attestation again") {
					cancel()
					return nil
				}
				if renewed.Add(1) == 1 { // the token is spent: leave a fresh one
					fresh, err := os.ReadFile(ca.Token(t, "host-cap-2"))
					if err != nil {
						return err
					}
					return os.WriteFile(tok, fresh, 0o600)
				}
				return nil
			}})
		if err := a.Run(ctx); err != nil {
			t.Fatalf("Run: %v\n%s", err, logs.String())
		}
		if !strings.Contains(logs.String(), "reattestation_required") {
			t.Fatalf("Run ended without re-attesting:\n%s", logs.String())
		}
		tc, err := agent.LoadCertificate(a.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.Leaf.URIs[0].String(); got != "spiffe://dev.workerca.test/worker/default/host-cap-2" {
			t.Errorf("identity after re-attestation: %s", got)
		}
	})
}
