package revocation_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

var _ revocation.Ledger = (*store.Store)(nil)

// The issuer and service settings every harness shares.
const (
	// testCRLBase is the CRL base URL: certificates and CRLs name
	// testCRLBase/crl/<shard>.crl.
	testCRLBase = "http://ca.workers.test:8080"
	// testShards is the number of CRL shards.
	testShards = 4
	// testOCSPValidity is an OCSP answer's nextUpdate - thisUpdate.
	testOCSPValidity = time.Hour
	// testCRLValidity is a CRL's nextUpdate - thisUpdate.
	testCRLValidity = 24 * time.Hour
	// testCertTTL is the lifetime of the worker certificates.
	testCertTTL = time.Hour
)

// testStart is where a harness's clock starts: whole seconds, but off the
// minute, so that answers "on the minute" are visibly truncated.
var testStart = catest.Epoch.Add(7*time.Minute + 23*time.Second)

// testClock is a settable clock shared by the issuer, the enrollment
// service and the revocation service.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *testClock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// logRecorder is a slog.Handler that keeps the messages of the records it
// receives, so tests can assert the background loops logged no error.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.msgs {
		if strings.HasPrefix(m, "ERROR ") {
			out = append(out, m)
		}
	}
	return out
}

// harness is a real CA over a real store: an enrollment service that
// issues and records worker certificates (with sharded CDPs) and the
// delegated responder certificate, and a started revocation service.
type harness struct {
	st    *store.Store
	h     *catest.Hierarchy
	clock *testClock
	ra    *enroll.Service
	cfg   revocation.Config
	svc   *revocation.Service
	logs  *logRecorder
}

// issued is a worker certificate recorded in the ledger.
type issued struct {
	cert    *x509.Certificate
	serial  string
	worker  string
	pool    string
	subject string // the ledger's attestation subject, "token:<id>"
}

// newHarness builds the CA on st with the pools "build" and "deploy" and
// starts a revocation service; edit, if given, changes its Config first.
func newHarness(t *testing.T, st *store.Store, edit ...func(*revocation.Config)) *harness {
	t.Helper()
	clock := &testClock{now: testStart}
	hier := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := hier.Issuer(t, ca.Config{Clock: clock.Now, CRLBaseURL: testCRLBase, CRLShards: testShards})
	var pools []enroll.Pool
	for _, name := range []string{"build", "deploy"} {
		p, err := ca.NewProfile(ca.ProfileConfig{Name: name, TTL: testCertTTL, KeyTypes: []ca.KeyType{ca.KeyP256}})
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, enroll.Pool{Profile: p, Methods: []string{enroll.MethodToken}})
	}
	ra, err := enroll.New(enroll.Config{Issuer: iss, Ledger: st, TrustDomain: "workers.example.com", Pools: pools, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logRecorder{}
	cfg := revocation.Config{
		Ledger: st, Issuer: hier.Intermediate, Signer: hier.IntermediateKey,
		CRLBaseURL: testCRLBase, CRLShards: testShards, CRLValidity: testCRLValidity,
		OCSPValidity: testOCSPValidity, IssueResponder: ra.IssueResponder,
		StatusKey: catest.Key(t, ca.KeyP256), Clock: clock.Now, Logger: slog.New(logs),
	}
	for _, e := range edit {
		e(&cfg)
	}
	h := &harness{st: st, h: hier, clock: clock, ra: ra, cfg: cfg, logs: logs}
	h.svc = h.start(t)
	return h
}

// start makes and starts a new Service over the harness's Config and
// ledger: a restart, or a second replica.
func (h *harness) start(t *testing.T) *revocation.Service {
	t.Helper()
	return h.replica(t, h.cfg.Ledger)
}

// run runs the service's background loops until the test ends.
func (h *harness) run(t *testing.T) {
	t.Helper()
	runService(t, h.svc)
}

// enroll issues and records a worker certificate with a one-time token,
// as POST /v1/enroll does.
func (h *harness) enroll(t *testing.T, pool, worker string) issued {
	t.Helper()
	ctx := context.Background()
	tok, err := h.ra.CreateToken(ctx, enroll.TokenRequest{Pool: pool, WorkerID: worker, TTL: time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, catest.Key(t, ca.KeyP256))})
	res, err := h.ra.EnrollToken(ctx, tok.Value, csr)
	if err != nil {
		t.Fatalf("EnrollToken: %v", err)
	}
	row := h.row(t, res.Serial)
	if row.AttestationSubject == "" || row.WorkerID != worker || row.Pool != pool {
		t.Fatalf("ledger row of %s: worker %q pool %q subject %q", res.Serial, row.WorkerID, row.Pool, row.AttestationSubject)
	}
	return issued{cert: res.Certificate, serial: res.Serial, worker: worker, pool: pool, subject: row.AttestationSubject}
}

// row reads a certificate's ledger row.
func (h *harness) row(t *testing.T, serial string) *store.Certificate {
	t.Helper()
	c, err := h.st.Certificate(context.Background(), serial)
	if err != nil {
		t.Fatalf("ledger row %s: %v", serial, err)
	}
	return c
}

// shardOf is the CRL shard of a certificate, from its serial.
func shardOf(c *x509.Certificate) int { return ca.CRLShard(c.SerialNumber, testShards) }

// inTwoShards enrolls workers in pool until it has one certificate in
// each of two distinct shards; it returns them.
func (h *harness) inTwoShards(t *testing.T, pool, prefix string) (issued, issued) {
	t.Helper()
	first := h.enroll(t, pool, prefix+"-0")
	for i := 1; i < 64; i++ {
		w := h.enroll(t, pool, fmt.Sprintf("%s-%d", prefix, i))
		if shardOf(w.cert) != shardOf(first.cert) {
			return first, w
		}
	}
	t.Fatal("64 certificates in one shard")
	return issued{}, issued{}
}

func TestNew(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, store.DriverSQLite)
	hier := catest.NewHierarchy(t, catest.Epoch)
	issue := func(context.Context, time.Duration) (*x509.Certificate, crypto.Signer, error) {
		return nil, nil, errors.New("not called")
	}
	valid := func() revocation.Config {
		return revocation.Config{
			Ledger: st, Issuer: hier.Intermediate, Signer: hier.IntermediateKey, CRLBaseURL: testCRLBase,
			IssueResponder: issue, StatusKey: catest.Key(t, ca.KeyP256),
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*revocation.Config)
		ok   bool
	}{
		{"ok/defaults", func(*revocation.Config) {}, true},
		{"ok/max-shards", func(c *revocation.Config) { c.CRLShards = ca.MaxCRLShards }, true},
		{"ok/ed25519-status-key", func(c *revocation.Config) { c.StatusKey = catest.Key(t, ca.KeyEd25519) }, true},
		{"ok/responder-ttl-twice-ocsp-validity", func(c *revocation.Config) {
			c.OCSPValidity, c.ResponderTTL = time.Hour, 2*time.Hour
		}, true},
		{"fail/no-ledger", func(c *revocation.Config) { c.Ledger = nil }, false},
		{"fail/no-issuer", func(c *revocation.Config) { c.Issuer = nil }, false},
		{"fail/no-signer", func(c *revocation.Config) { c.Signer = nil }, false},
		{"fail/no-responder-issuer", func(c *revocation.Config) { c.IssueResponder = nil }, false},
		{"fail/no-status-key", func(c *revocation.Config) { c.StatusKey = nil }, false},
		{"fail/no-crl-base-url", func(c *revocation.Config) { c.CRLBaseURL = "" }, false},
		{"fail/negative-shards", func(c *revocation.Config) { c.CRLShards = -1 }, false},
		{"fail/too-many-shards", func(c *revocation.Config) { c.CRLShards = ca.MaxCRLShards + 1 }, false},
		{"fail/crl-validity-under-a-minute", func(c *revocation.Config) {
			c.CRLValidity, c.CRLRebuild = 59*time.Second, time.Second
		}, false},
		{"fail/crl-rebuild-not-below-validity", func(c *revocation.Config) {
			c.CRLValidity, c.CRLRebuild = time.Hour, time.Hour
		}, false},
		{"fail/ocsp-validity-under-two-minutes", func(c *revocation.Config) { c.OCSPValidity = 119 * time.Second }, false},
		{"fail/responder-ttl-under-twice-ocsp-validity", func(c *revocation.Config) {
			c.OCSPValidity, c.ResponderTTL = time.Hour, 2*time.Hour-time.Second
		}, false},
		{"fail/status-key-p224", func(c *revocation.Config) { c.StatusKey = catest.WeakKey(t, "p224") }, false},
		{"fail/status-key-rsa-1024", func(c *revocation.Config) { c.StatusKey = catest.WeakKey(t, "rsa1024") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.edit(&cfg)
			svc, err := revocation.New(cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && svc.Shards() != max(cfg.CRLShards, 1) {
				t.Errorf("Shards() = %d, want %d", svc.Shards(), max(cfg.CRLShards, 1))
			}
		})
	}
}

// TestRevoke revokes by each selector and checks the ledger, the result
// lists, idempotence and the refusals.
func TestRevoke(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		bySerial := h.enroll(t, "build", "w-serial")
		upper := h.enroll(t, "build", "w-upper")
		worker1, worker2 := h.enroll(t, "build", "w-worker"), h.enroll(t, "build", "w-worker")
		pool1, pool2 := h.enroll(t, "deploy", "w-pool-1"), h.enroll(t, "deploy", "w-pool-2")
		subject := h.enroll(t, "build", "w-subject")
		sameWorkerOtherToken := h.enroll(t, "build", "w-subject")
		own := h.enroll(t, "build", "w-own")
		keep := h.enroll(t, "build", "w-keep")
		compromised := h.clock.Now().Add(2 * time.Minute)
		h.clock.Add(5 * time.Minute)
		revokedAt := h.clock.Now()

		for _, tc := range []struct {
			name   string
			req    revocation.Request
			reason revocation.Reason
			want   []issued
		}{
			{"ok/serial", revocation.Request{Serial: bySerial.serial, Reason: revocation.Superseded, Actor: "op"},
				revocation.Superseded, []issued{bySerial}},
			{"ok/serial-uppercase", revocation.Request{Serial: strings.ToUpper(upper.serial), Reason: revocation.Unspecified},
				revocation.Unspecified, []issued{upper}},
			{"ok/worker-every-certificate", revocation.Request{WorkerID: "w-worker", Reason: revocation.KeyCompromise, InvalidityDate: &compromised},
				revocation.KeyCompromise, []issued{worker1, worker2}},
			{"ok/pool-every-worker", revocation.Request{Pool: "deploy", Reason: revocation.CessationOfOperation},
				revocation.CessationOfOperation, []issued{pool1, pool2}},
			{"ok/attestation-subject-only-that-enrollment", revocation.Request{AttestationSubject: subject.subject, Reason: revocation.PrivilegeWithdrawn},
				revocation.PrivilegeWithdrawn, []issued{subject}},
			{"ok/affiliation-changed-by-operator", revocation.Request{Serial: own.serial, Reason: revocation.AffiliationChanged},
				revocation.AffiliationChanged, []issued{own}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := make([]string, 0, len(tc.want))
				for _, w := range tc.want {
					want = append(want, w.serial)
				}
				slices.Sort(want)
				res, err := h.svc.Revoke(ctx, tc.req)
				if err != nil {
					t.Fatalf("Revoke: %v", err)
				}
				if got := sorted(res.Revoked); !slices.Equal(got, want) || len(res.AlreadyRevoked) != 0 {
					t.Fatalf("Revoke: revoked %v, already %v; want revoked %v", got, res.AlreadyRevoked, want)
				}
				for _, w := range tc.want {
					row := h.row(t, w.serial)
					if row.RevokedAt == nil || !row.RevokedAt.Equal(revokedAt) || row.RevocationReason == nil || *row.RevocationReason != int(tc.reason) {
						t.Errorf("ledger row %s: revoked_at %v reason %v, want %v and %d", w.serial, row.RevokedAt, row.RevocationReason, revokedAt, tc.reason)
					}
					if (tc.req.InvalidityDate == nil) != (row.InvalidityDate == nil) ||
						tc.req.InvalidityDate != nil && !row.InvalidityDate.Equal(*tc.req.InvalidityDate) {
						t.Errorf("ledger row %s: invalidity date %v, want %v", w.serial, row.InvalidityDate, tc.req.InvalidityDate)
					}
				}
				// Idempotent: the second call changes nothing and says so,
				// even later and with another reason.
				h.clock.Add(10 * time.Minute)
				defer h.clock.Add(-10 * time.Minute)
				again := tc.req
				again.Reason = revocation.Superseded
				again.InvalidityDate = nil
				res, err = h.svc.Revoke(ctx, again)
				if err != nil {
					t.Fatalf("second Revoke: %v", err)
				}
				if got := sorted(res.AlreadyRevoked); !slices.Equal(got, want) || len(res.Revoked) != 0 {
					t.Fatalf("second Revoke: revoked %v, already %v; want already %v", res.Revoked, got, want)
				}
				for _, w := range tc.want {
					if row := h.row(t, w.serial); !row.RevokedAt.Equal(revokedAt) || *row.RevocationReason != int(tc.reason) {
						t.Errorf("second Revoke changed %s: revoked_at %v reason %d", w.serial, row.RevokedAt, *row.RevocationReason)
					}
				}
			})
		}

		future := h.clock.Now().Add(time.Second)
		for _, tc := range []struct {
			name string
			req  revocation.Request
			want error
		}{
			{"fail/no-selector", revocation.Request{Reason: revocation.KeyCompromise}, revocation.ErrInvalidRequest},
			{"fail/two-selectors", revocation.Request{Serial: keep.serial, Pool: "build"}, revocation.ErrInvalidRequest},
			{"fail/worker-and-subject", revocation.Request{WorkerID: "w-keep", AttestationSubject: keep.subject}, revocation.ErrInvalidRequest},
			{"fail/reason-ca-compromise", revocation.Request{Serial: keep.serial, Reason: revocation.CACompromise}, revocation.ErrInvalidRequest},
			{"fail/reason-certificate-hold", revocation.Request{Serial: keep.serial, Reason: 6}, revocation.ErrInvalidRequest},
			{"fail/reason-remove-from-crl", revocation.Request{Serial: keep.serial, Reason: 8}, revocation.ErrInvalidRequest},
			{"fail/reason-99", revocation.Request{Serial: keep.serial, Reason: 99}, revocation.ErrInvalidRequest},
			{"fail/reason-negative", revocation.Request{Serial: keep.serial, Reason: -1}, revocation.ErrInvalidRequest},
			{"fail/invalidity-date-in-future", revocation.Request{Serial: keep.serial, Reason: revocation.KeyCompromise, InvalidityDate: &future}, revocation.ErrInvalidRequest},
			{"fail/serial-not-hex", revocation.Request{Serial: "zz"}, revocation.ErrInvalidRequest},
			{"fail/serial-41-digits", revocation.Request{Serial: "1" + strings.Repeat("0", 40)}, revocation.ErrInvalidRequest},
			{"fail/serial-zero", revocation.Request{Serial: "00"}, revocation.ErrInvalidRequest},
			{"fail/serial-negative", revocation.Request{Serial: "-" + keep.serial[1:]}, revocation.ErrInvalidRequest},
			{"fail/serial-with-0x", revocation.Request{Serial: "0x" + keep.serial[2:]}, revocation.ErrInvalidRequest},
			{"fail/unknown-serial", revocation.Request{Serial: "0123456789abcdef"}, revocation.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := h.svc.Revoke(ctx, tc.req)
				if !errors.Is(err, tc.want) || res != nil {
					t.Fatalf("Revoke: %v, %v; want %v", res, err, tc.want)
				}
			})
		}

		t.Run("ok/revoke-own", func(t *testing.T) {
			for _, r := range revocation.WorkerReasons {
				w := h.enroll(t, "build", "w-own-"+strings.ToLower(r.String()))
				res, err := h.svc.RevokeOwn(ctx, w.serial, r)
				if err != nil || !slices.Equal(res.Revoked, []string{w.serial}) {
					t.Fatalf("RevokeOwn %s: %v, %v", r, res, err)
				}
				if row := h.row(t, w.serial); *row.RevocationReason != int(r) {
					t.Errorf("RevokeOwn %s: reason %d recorded", r, *row.RevocationReason)
				}
			}
		})
		for _, tc := range []struct {
			name   string
			serial string
			reason revocation.Reason
			want   error
		}{
			{"fail/revoke-own-affiliation-changed", keep.serial, revocation.AffiliationChanged, revocation.ErrNotOwn},
			{"fail/revoke-own-privilege-withdrawn", keep.serial, revocation.PrivilegeWithdrawn, revocation.ErrNotOwn},
			{"fail/revoke-own-unspecified", keep.serial, revocation.Unspecified, revocation.ErrNotOwn},
			{"fail/revoke-own-ca-compromise", keep.serial, revocation.CACompromise, revocation.ErrNotOwn},
			{"fail/revoke-own-unknown-serial", "0123456789abcdef", revocation.KeyCompromise, revocation.ErrNotFound},
			{"fail/revoke-own-bad-serial", "zz", revocation.KeyCompromise, revocation.ErrInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := h.svc.RevokeOwn(ctx, tc.serial, tc.reason); !errors.Is(err, tc.want) {
					t.Fatalf("RevokeOwn: %v, want %v", err, tc.want)
				}
			})
		}

		// No refusal and no selector touched what it did not name.
		for _, w := range []issued{keep, sameWorkerOtherToken} {
			if row := h.row(t, w.serial); row.RevokedAt != nil {
				t.Errorf("%s (%s) was revoked at %v", w.serial, w.worker, row.RevokedAt)
			}
		}
	})
}

// TestRevokeSelectorsSkipExpired shows that a worker, pool or subject
// selector revokes the certificates still valid at the invalidity date
// (or now), while a serial reaches an expired certificate too.
func TestRevokeSelectorsSkipExpired(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		issuedAt := h.clock.Now()
		oldA, oldB := h.enroll(t, "build", "w-a"), h.enroll(t, "build", "w-b")
		h.clock.Add(testCertTTL + time.Hour) // the first certificates expired an hour ago
		newA, newB := h.enroll(t, "build", "w-a"), h.enroll(t, "build", "w-b")

		res, err := h.svc.Revoke(ctx, revocation.Request{WorkerID: "w-a", Reason: revocation.Superseded})
		if err != nil || !slices.Equal(res.Revoked, []string{newA.serial}) {
			t.Fatalf("revoke worker w-a: %v, %v; want only the valid %s", res, err, newA.serial)
		}
		// Compromised while the old certificate was valid: both go.
		inv := issuedAt.Add(10 * time.Minute)
		res, err = h.svc.Revoke(ctx, revocation.Request{WorkerID: "w-b", Reason: revocation.KeyCompromise, InvalidityDate: &inv})
		if err != nil || !slices.Equal(sorted(res.Revoked), sorted([]string{oldB.serial, newB.serial})) {
			t.Fatalf("revoke worker w-b since %v: %v, %v; want %s and %s", inv, res, err, oldB.serial, newB.serial)
		}
		if row := h.row(t, oldA.serial); row.RevokedAt != nil {
			t.Fatalf("expired %s revoked by the worker selector", oldA.serial)
		}
		res, err = h.svc.Revoke(ctx, revocation.Request{Serial: oldA.serial, Reason: revocation.KeyCompromise})
		if err != nil || !slices.Equal(res.Revoked, []string{oldA.serial}) {
			t.Fatalf("revoke expired %s by serial: %v, %v", oldA.serial, res, err)
		}
		res, err = h.svc.Revoke(ctx, revocation.Request{Pool: "deploy", Reason: revocation.Superseded})
		if err != nil || len(res.Revoked)+len(res.AlreadyRevoked) != 0 {
			t.Fatalf("revoke an empty pool: %v, %v; want an empty result", res, err)
		}
	})
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// parsedCRL is a shard's served CRL, parsed and checked.
type parsedCRL struct {
	*revocation.CRL
	list *x509.RevocationList
}

// crl returns svc's CRL of shard after checking what every shard CRL
// must be: signed by the intermediate, v2 with AKI and number, the
// configured validity, a critical IDP naming the shard's URL, and the
// served metadata equal to the signed fields.
func (h *harness) crl(t *testing.T, svc *revocation.Service, shard int) parsedCRL {
	t.Helper()
	c, err := svc.CRL(shard)
	if err != nil {
		t.Fatalf("CRL(%d): %v", shard, err)
	}
	l, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatalf("CRL(%d): %v", shard, err)
	}
	if err := l.CheckSignatureFrom(h.h.Intermediate); err != nil {
		t.Fatalf("CRL(%d) not signed by the intermediate: %v", shard, err)
	}
	if c.Shard != shard || l.Number == nil || l.Number.Cmp(big.NewInt(c.Number)) != 0 || c.ETag != fmt.Sprintf(`"%x"`, c.Number) {
		t.Errorf("CRL(%d): shard %d number %v served as %d, ETag %s", shard, c.Shard, l.Number, c.Number, c.ETag)
	}
	if !l.ThisUpdate.Equal(c.ThisUpdate) || !l.NextUpdate.Equal(c.NextUpdate) || !l.NextUpdate.Equal(l.ThisUpdate.Add(testCRLValidity)) {
		t.Errorf("CRL(%d): thisUpdate %v nextUpdate %v, served %v %v", shard, l.ThisUpdate, l.NextUpdate, c.ThisUpdate, c.NextUpdate)
	}
	if !bytes.Equal(l.AuthorityKeyId, h.h.Intermediate.SubjectKeyId) {
		t.Errorf("CRL(%d): AKI %x, want %x", shard, l.AuthorityKeyId, h.h.Intermediate.SubjectKeyId)
	}
	want := ca.CRLShardURL(testCRLBase, shard)
	if e, ok := findExtension(l.Extensions, oidIDP); !ok || !e.Critical {
		t.Errorf("CRL(%d): no critical IDP naming %s", shard, want)
	} else if uri, _ := parseIDP(t, e.Value); string(uri) != want {
		t.Errorf("CRL(%d): IDP names %s, want %s", shard, uri, want)
	}
	return parsedCRL{CRL: c, list: l}
}

// entry finds a serial on a CRL.
func (p parsedCRL) entry(serial *big.Int) (x509.RevocationListEntry, bool) {
	for _, e := range p.list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return e, true
		}
	}
	return x509.RevocationListEntry{}, false
}

var oidInvalidityDateExt = asn1.ObjectIdentifier{2, 5, 29, 24}

// TestServiceCRL checks the CRLs Start builds, what a revocation puts on
// its shard's CRL and on no other, and the refusals of CRL and Rebuild.
func TestServiceCRL(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		first := make([]int64, testShards)
		for shard := range testShards {
			first[shard] = h.crl(t, h.svc, shard).Number
			if c := h.crl(t, h.svc, shard); len(c.list.RevokedCertificateEntries) != 0 {
				t.Errorf("fresh CRL %d lists %d entries", shard, len(c.list.RevokedCertificateEntries))
			}
		}
		stored, err := st.CRLs(ctx)
		if err != nil || len(stored) != testShards {
			t.Fatalf("ledger CRLs after Start: %d, %v; want %d", len(stored), err, testShards)
		}
		for _, shard := range []int{-1, testShards} {
			if _, err := h.svc.CRL(shard); !errors.Is(err, revocation.ErrNoCRL) {
				t.Errorf("CRL(%d): %v, want ErrNoCRL", shard, err)
			}
			if err := h.svc.Rebuild(ctx, shard); !errors.Is(err, revocation.ErrNoCRL) {
				t.Errorf("Rebuild(%d): %v, want ErrNoCRL", shard, err)
			}
		}

		kc, other := h.inTwoShards(t, "build", "w-crl")
		if want := []string{ca.CRLShardURL(testCRLBase, shardOf(kc.cert))}; !slices.Equal(kc.cert.CRLDistributionPoints, want) {
			t.Fatalf("certificate CDP %v, want %v", kc.cert.CRLDistributionPoints, want)
		}
		h.clock.Add(3 * time.Second)
		inv := h.clock.Now().Add(-time.Hour)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: kc.serial, Reason: revocation.KeyCompromise, InvalidityDate: &inv}); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(time.Second)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: other.serial, Reason: revocation.Unspecified}); err != nil {
			t.Fatal(err)
		}
		revokedAt := h.row(t, kc.serial).RevokedAt
		for shard := range testShards {
			if err := h.svc.Rebuild(ctx, shard); err != nil {
				t.Fatalf("Rebuild(%d): %v", shard, err)
			}
			c := h.crl(t, h.svc, shard)
			if c.Number <= first[shard] {
				t.Errorf("CRL %d number %d after %d: did not grow", shard, c.Number, first[shard])
			}
			e, onKC := c.entry(kc.cert.SerialNumber)
			eo, onOther := c.entry(other.cert.SerialNumber)
			if onKC != (shard == shardOf(kc.cert)) || onOther != (shard == shardOf(other.cert)) {
				t.Fatalf("CRL %d: lists %s %v, %s %v; want each on its own shard only (%d, %d)",
					shard, kc.serial, onKC, other.serial, onOther, shardOf(kc.cert), shardOf(other.cert))
			}
			if onKC {
				if !e.RevocationTime.Equal(*revokedAt) || e.ReasonCode != int(revocation.KeyCompromise) {
					t.Errorf("entry %s: %v reason %d, want %v keyCompromise", kc.serial, e.RevocationTime, e.ReasonCode, revokedAt)
				}
				var got time.Time
				for _, x := range e.Extensions {
					if x.Id.Equal(oidInvalidityDateExt) {
						if _, err := asn1.UnmarshalWithParams(x.Value, &got, "generalized"); err != nil {
							t.Fatal(err)
						}
					}
				}
				if !got.Equal(inv) {
					t.Errorf("entry %s: invalidity date %v, want %v", kc.serial, got, inv)
				}
			}
			if onOther && (eo.ReasonCode != 0 || len(eo.Extensions) != 0) {
				t.Errorf("entry %s: reason %d, extensions %v; unspecified must carry no reasonCode", other.serial, eo.ReasonCode, eo.Extensions)
			}
		}
		stored, err = st.CRLs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stored {
			if c, _ := h.svc.CRL(s.Shard); !bytes.Equal(c.DER, s.DER) || c.Number != s.Number {
				t.Errorf("ledger CRL %d number %d is not the served one (%d)", s.Shard, s.Number, c.Number)
			}
		}
	})
}

// TestServiceCRLBackgroundRebuild shows that Run rebuilds a revoked
// certificate's shard on its own, at once, and leaves the other shards.
func TestServiceCRLBackgroundRebuild(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-bg")
		shard := shardOf(w.cert)
		before := make([]int64, testShards)
		for s := range testShards {
			before[s] = h.crl(t, h.svc, s).Number
		}
		h.run(t)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.Superseded}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		var c parsedCRL
		for {
			c = h.crl(t, h.svc, shard)
			if _, ok := c.entry(w.cert.SerialNumber); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5 s CRL %d (number %d) does not list %s; logs: %v", shard, c.Number, w.serial, h.logs.errors())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if c.Number <= before[shard] {
			t.Errorf("CRL %d number %d, was %d", shard, c.Number, before[shard])
		}
		for s := range testShards {
			if s != shard && h.crl(t, h.svc, s).Number != before[s] {
				t.Errorf("CRL %d was rebuilt though nothing on it changed", s)
			}
		}
		if errs := h.logs.errors(); len(errs) != 0 {
			t.Errorf("background loops logged errors: %v", errs)
		}
	})
}

// TestServiceCRLNumbers shows that CRL numbers only grow: across a
// restart on the same ledger, with the clock set back, and between two
// replicas that both build a shard.
func TestServiceCRLNumbers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-restart")
		shard := shardOf(w.cert)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Rebuild(ctx, shard); err != nil {
			t.Fatal(err)
		}
		built := h.crl(t, h.svc, shard)

		// A restart within the rebuild period serves the stored CRLs.
		restarted := h.start(t)
		if c := h.crl(t, restarted, shard); c.Number != built.Number || !bytes.Equal(c.DER, built.DER) {
			t.Fatalf("restart: CRL %d number %d, want the stored %d", shard, c.Number, built.Number)
		}
		if err := restarted.Rebuild(ctx, shard); err != nil {
			t.Fatal(err)
		}
		after := h.crl(t, restarted, shard)
		if after.Number <= built.Number {
			t.Fatalf("restart then rebuild: number %d, want above %d", after.Number, built.Number)
		}
		if _, ok := after.entry(w.cert.SerialNumber); !ok {
			t.Fatalf("restart then rebuild: %s dropped", w.serial)
		}

		// With the clock set back (a replica running behind), numbers
		// still grow and the entry stays listed.
		h.clock.Add(-30 * time.Minute)
		back := h.start(t)
		if err := back.Rebuild(ctx, shard); err != nil {
			t.Fatalf("clock set back: Rebuild: %v", err)
		}
		c := h.crl(t, back, shard)
		if c.Number <= after.Number {
			t.Fatalf("clock set back: number %d, want above %d", c.Number, after.Number)
		}
		if e, ok := c.entry(w.cert.SerialNumber); !ok || e.RevocationTime.After(c.ThisUpdate) {
			t.Fatalf("clock set back: %s listed %v, revoked at %v after thisUpdate %v", w.serial, ok, e.RevocationTime, c.ThisUpdate)
		}
		h.clock.Add(30 * time.Minute)

		// Past the rebuild period a restart rebuilds every shard.
		stored, err := st.CRLs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Add(revocation.DefaultCRLRebuild)
		later := h.start(t)
		for _, s := range stored {
			if c := h.crl(t, later, s.Shard); c.Number <= s.Number || !c.ThisUpdate.Equal(h.clock.Now()) {
				t.Errorf("restart past the rebuild period: CRL %d number %d thisUpdate %v, was %d", s.Shard, c.Number, c.ThisUpdate, s.Number)
			}
		}

		// Two replicas: the one that loaded first and builds second adopts
		// the newer stored CRL instead of going back.
		replicaA, replicaB := h.start(t), h.start(t)
		if err := replicaA.Rebuild(ctx, shard); err != nil {
			t.Fatal(err)
		}
		if err := replicaA.Rebuild(ctx, shard); err != nil {
			t.Fatal(err)
		}
		a := h.crl(t, replicaA, shard)
		if err := replicaB.Rebuild(ctx, shard); err != nil {
			t.Fatalf("replica B Rebuild: %v", err)
		}
		if b := h.crl(t, replicaB, shard); b.Number < a.Number {
			t.Fatalf("replica B serves number %d below replica A's %d", b.Number, a.Number)
		}
		stored, err = st.CRLs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stored {
			if s.Shard == shard && s.Number < a.Number {
				t.Fatalf("ledger CRL %d went back to %d from %d", shard, s.Number, a.Number)
			}
		}
	})
}

// TestServiceCRLExpiredEntries shows an entry staying on exactly one CRL
// built after its certificate's notAfter, and an expired certificate
// revoked by serial appearing on the next CRL.
func TestServiceCRLExpiredEntries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		revoked := h.enroll(t, "build", "w-expiring")
		late := h.enroll(t, "build", "w-late")
		h.clock.Add(30 * time.Minute)
		fresh := h.enroll(t, "build", "w-fresh") // valid past the first two's notAfter
		for _, w := range []issued{revoked, fresh} {
			if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: w.serial, Reason: revocation.Superseded}); err != nil {
				t.Fatal(err)
			}
		}
		// step rebuilds every shard, one CRL each, and checks which of
		// the certificates the CRLs list.
		step := func(name string, want map[issued]bool) {
			t.Helper()
			for shard := range testShards {
				if err := h.svc.Rebuild(ctx, shard); err != nil {
					t.Fatalf("%s: Rebuild(%d): %v", name, shard, err)
				}
			}
			for w, listed := range want {
				_, ok := h.crl(t, h.svc, shardOf(w.cert)).entry(w.cert.SerialNumber)
				if ok != listed {
					t.Errorf("%s: %s (notAfter %v) on the CRL built at %v: %v, want %v", name, w.worker, w.cert.NotAfter, h.clock.Now(), ok, listed)
				}
			}
		}
		step("before notAfter", map[issued]bool{revoked: true, fresh: true, late: false})
		h.clock.Set(revoked.cert.NotAfter.Add(time.Second))
		step("first CRL after notAfter", map[issued]bool{revoked: true, fresh: true, late: false})
		h.clock.Add(time.Second)
		step("second CRL after notAfter", map[issued]bool{revoked: false, fresh: true, late: false})

		// late expired unrevoked; revoked now by serial, it is on the next
		// CRL and only that one.
		h.clock.Add(time.Minute)
		if _, err := h.svc.Revoke(ctx, revocation.Request{Serial: late.serial, Reason: revocation.KeyCompromise}); err != nil {
			t.Fatal(err)
		}
		h.clock.Add(time.Second)
		step("next CRL after revoking an expired certificate", map[issued]bool{revoked: false, fresh: true, late: true})
		h.clock.Add(time.Second)
		step("the CRL after that", map[issued]bool{revoked: false, fresh: true, late: false})
	})
}
