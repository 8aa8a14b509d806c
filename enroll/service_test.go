package enroll_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

var _ enroll.Ledger = (*store.Store)(nil)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type fixture struct {
	svc   *enroll.Service
	st    *store.Store
	h     *catest.Hierarchy
	clock *clock
}

func newFixture(t *testing.T, st *store.Store, pools ...enroll.Pool) *fixture {
	t.Helper()
	clk := &clock{now: catest.Epoch}
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	if len(pools) == 0 {
		pools = []enroll.Pool{pool(t, "default", 0, enroll.MethodToken)}
	}
	svc, err := enroll.New(enroll.Config{
		Issuer: h.Issuer(t, ca.Config{Clock: clk.Now}), Ledger: st, TrustDomain: "workers.example.com",
		Pools: pools, Clock: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, h: h, clock: clk}
}

// attestFixture is an enrollment service over st with one attestor and
// the given pools, on clk.
func attestFixture(t *testing.T, st *store.Store, clk *clock, att enroll.Attestor, pools ...enroll.Pool) *fixture {
	t.Helper()
	h := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	svc, err := enroll.New(enroll.Config{
		Issuer: h.Issuer(t, ca.Config{Clock: clk.Now}), Ledger: st, TrustDomain: "workers.example.com",
		Pools: pools, Clock: clk.Now, Attestors: []enroll.Attestor{att},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, h: h, clock: clk}
}

func pool(t *testing.T, name string, max int, methods ...string) enroll.Pool {
	t.Helper()
	p, err := ca.NewProfile(ca.ProfileConfig{Name: name, TTL: time.Hour, KeyTypes: []ca.KeyType{ca.KeyP256, ca.KeyEd25519}})
	if err != nil {
		t.Fatal(err)
	}
	return enroll.Pool{Profile: p, MaxActiveWorkers: max, Methods: methods}
}

func (f *fixture) token(t *testing.T, pool, worker string) string {
	t.Helper()
	tok, err := f.svc.CreateToken(context.Background(), enroll.TokenRequest{Pool: pool, WorkerID: worker, TTL: time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return tok.Value
}

func csrPEM(t *testing.T, kt ca.KeyType) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, catest.Key(t, kt))})
}

func (f *fixture) activeWorkers(t *testing.T, pool string) int {
	t.Helper()
	n, err := f.st.CountActiveWorkers(context.Background(), pool, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnrollToken(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		f := newFixture(t, st)
		tok := f.token(t, "default", "host-01")
		res, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256))
		if err != nil {
			t.Fatalf("EnrollToken: %v", err)
		}
		if res.SPIFFEID != "spiffe://workers.example.com/worker/default/host-01" || res.Certificate.Subject.CommonName != "host-01" {
			t.Fatalf("identity = %s CN=%s; must come from the token, not the CSR", res.SPIFFEID, res.Certificate.Subject.CommonName)
		}
		if len(res.Chain) != 2 || !res.Chain[1].Equal(f.h.Intermediate) {
			t.Fatal("chain is not leaf + intermediate")
		}
		if _, err := res.Certificate.Verify(x509.VerifyOptions{Roots: f.h.Roots(), Intermediates: certPool(res.Chain[1]), CurrentTime: f.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatal(err)
		}
		row, err := st.Certificate(ctx, res.Serial)
		if err != nil {
			t.Fatalf("ledger row missing: %v", err)
		}
		if row.WorkerID != "host-01" || row.Pool != "default" || row.Method != "token" || row.SPIFFEID != res.SPIFFEID ||
			row.SPKISHA256 != ca.SPKISHA256(res.Certificate) || string(row.DER) != string(res.Certificate.Raw) ||
			!row.NotAfter.Equal(res.Certificate.NotAfter) || !row.RetainUntil.Equal(res.Certificate.NotAfter.Add(enroll.DefaultRetentionBuffer)) {
			t.Fatalf("ledger row does not match the certificate: %+v", row)
		}
		if _, err := f.svc.EnrollToken(ctx, tok, csrPEM(t, ca.KeyP256)); !errors.Is(err, enroll.ErrTokenUsed) {
			t.Fatalf("second use: err = %v, want ErrTokenUsed", err)
		}
	})
}

func TestEnrollTokenRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		f := newFixture(t, st, pool(t, "default", 0, enroll.MethodToken), pool(t, "capped", 1, enroll.MethodToken))
		good := csrPEM(t, ca.KeyP256)
		// a valid token whose secret is replaced: same ID, wrong secret
		wrongSecret := f.token(t, "default", "w-secret")
		wrongSecret = wrongSecret[:len(wrongSecret)-4] + "0000"
		expired := f.token(t, "default", "w-expired")
		used := f.token(t, "default", "w-used")
		if _, err := f.svc.EnrollToken(ctx, used, good); err != nil {
			t.Fatal(err)
		}
		capFirst := f.token(t, "capped", "first")
		if _, err := f.svc.EnrollToken(ctx, capFirst, good); err != nil {
			t.Fatal(err)
		}
		capSecond := f.token(t, "capped", "second")
		badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.BadSignatureCSR(t)})
		rsa1024 := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, catest.WeakKey(t, "rsa1024"))})
		p224 := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, catest.WeakKey(t, "p224"))})
		rsaNotInPool := csrPEM(t, ca.KeyRSA)
		before := f.activeWorkers(t, "default")

		tests := []struct {
			name  string
			token string
			csr   []byte
			setup func()
			want  error
		}{
			{"fail/token-malformed", "wct_nope", good, nil, enroll.ErrTokenInvalid},
			{"fail/token-unknown", "wct_0123456789abcdef_" + string(make64('a')), good, nil, enroll.ErrTokenInvalid},
			{"fail/token-wrong-secret", wrongSecret, good, nil, enroll.ErrTokenInvalid},
			{"fail/token-used", used, good, nil, enroll.ErrTokenUsed},
			{"fail/pool-at-cap", capSecond, good, nil, enroll.ErrPoolFull},
			{"fail/csr-malformed", f.token(t, "default", "w-malformed"), []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), nil, ca.ErrBadCSR},
			{"fail/csr-not-a-csr", f.token(t, "default", "w-notcsr"), []byte("hello"), nil, ca.ErrBadCSR},
			{"fail/csr-bad-signature", f.token(t, "default", "w-badsig"), badSig, nil, ca.ErrBadCSR},
			{"fail/csr-rsa-1024", f.token(t, "default", "w-rsa1024"), rsa1024, nil, ca.ErrKeyNotAllowed},
			{"fail/csr-p-224", f.token(t, "default", "w-p224"), p224, nil, ca.ErrKeyNotAllowed},
			{"fail/csr-rsa-not-in-pool-policy", f.token(t, "default", "w-rsa"), rsaNotInPool, nil, ca.ErrKeyNotAllowed},
			// last: moves the clock past every token's expiry
			{"fail/token-expired", expired, good, func() { f.clock.Add(2 * time.Hour) }, enroll.ErrTokenExpired},
		}
		for _, tc := range tests {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := f.svc.EnrollToken(ctx, tc.token, tc.csr)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		f.clock.Add(-2 * time.Hour)
		if got := f.activeWorkers(t, "default"); got != before {
			t.Errorf("refusals left ledger rows: %d active workers, want %d", got, before)
		}
		if got := f.activeWorkers(t, "capped"); got != 1 {
			t.Errorf("capped pool has %d active workers, want 1", got)
		}
	})
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestConcurrentTokenUseIssuesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		f := newFixture(t, st)
		tok := f.token(t, "default", "racer")
		const n = 16
		csrs := make([][]byte, n)
		for i := range csrs {
			csrs[i] = csrPEM(t, ca.KeyP256)
		}
		var ok, used atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := f.svc.EnrollToken(ctx, tok, csrs[i])
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, enroll.ErrTokenUsed):
					used.Add(1)
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || used.Load() != n-1 {
			t.Fatalf("%d successes and %d token_used, want 1 and %d", ok.Load(), used.Load(), n-1)
		}
		if got := f.activeWorkers(t, "default"); got != 1 {
			t.Fatalf("%d ledger rows for one token", got)
		}
	})
}

func TestLedgerFailureReturnsNoCertificate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		res, err := f.svc.Issue(context.Background(), enroll.Request{
			CSR:      csrPEM(t, ca.KeyP256),
			Identity: ca.Identity{Pool: "default", WorkerID: "w", Method: enroll.MethodToken},
		})
		if !errors.Is(err, enroll.ErrLedgerUnavailable) || res != nil {
			t.Fatalf("Issue with the ledger down: res=%v err=%v, want no certificate and ErrLedgerUnavailable", res, err)
		}
		if _, err := f.svc.CreateToken(context.Background(), enroll.TokenRequest{Pool: "default", WorkerID: "w"}); !errors.Is(err, enroll.ErrLedgerUnavailable) {
			t.Fatalf("CreateToken with the ledger down: err = %v", err)
		}
	})
}

func TestCreateTokenRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st, pool(t, "default", 0, enroll.MethodToken))
		tests := []struct {
			name string
			req  enroll.TokenRequest
			want error
		}{
			{"fail/unknown-pool", enroll.TokenRequest{Pool: "nope", WorkerID: "w"}, enroll.ErrUnknownPool},
			{"fail/worker-id-with-slash", enroll.TokenRequest{Pool: "default", WorkerID: "a/b"}, enroll.ErrInvalidRequest},
			{"fail/worker-id-empty", enroll.TokenRequest{Pool: "default"}, enroll.ErrInvalidRequest},
			{"fail/ttl-too-long", enroll.TokenRequest{Pool: "default", WorkerID: "w", TTL: 30 * 24 * time.Hour}, enroll.ErrInvalidRequest},
			{"fail/ttl-too-short", enroll.TokenRequest{Pool: "default", WorkerID: "w", TTL: time.Second}, enroll.ErrInvalidRequest},
		}
		for _, tc := range tests {
			if _, err := f.svc.CreateToken(context.Background(), tc.req); !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
		tok, err := f.svc.CreateToken(context.Background(), enroll.TokenRequest{Pool: "default", WorkerID: "w"})
		if err != nil {
			t.Fatal(err)
		}
		row, err := st.Token(context.Background(), tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.SecretHash == "" || len(tok.Value) < 60 || strings.Contains(tok.Value, row.SecretHash) {
			t.Fatal("token secret stored in the clear or hash missing")
		}
		if !row.ExpiresAt.Equal(catest.Epoch.Add(enroll.DefaultTokenTTL)) {
			t.Fatalf("default expiry %s", row.ExpiresAt)
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	if _, err := enroll.New(enroll.Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		p := pool(t, "default", 0, enroll.MethodToken)
		if _, err := enroll.New(enroll.Config{Issuer: catest.NewHierarchy(t, catest.Epoch).Issuer(t, ca.Config{}), Ledger: st, TrustDomain: "td", Pools: []enroll.Pool{{Profile: p.Profile, Methods: []string{"carrier-pigeon"}}}}); err == nil {
			t.Fatal("unknown method accepted")
		}
		f := newFixture(t, st, p)
		_, err := f.svc.Issue(context.Background(), enroll.Request{CSR: csrPEM(t, ca.KeyP256), Identity: ca.Identity{Pool: "default", WorkerID: "w", Method: "aws-iid"}})
		if !errors.Is(err, enroll.ErrMethodNotAllowed) {
			t.Fatalf("err = %v, want ErrMethodNotAllowed", err)
		}
	})
}

func certPool(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}

// TestIssueResponderIsRecorded: the OCSP responder certificate is in the
// ledger like every certificate, in no pool, with its CRL shard.
func TestIssueResponderIsRecorded(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		f := newFixture(t, st)
		cert, key, err := f.svc.IssueResponder(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
			t.Fatal("certificate is not for the returned key")
		}
		row, err := st.Certificate(context.Background(), ca.SerialHex(cert.SerialNumber))
		if err != nil {
			t.Fatalf("responder certificate not in the ledger: %v", err)
		}
		if row.Method != enroll.MethodResponder || row.Pool != "" || row.CRLShard == nil || *row.CRLShard != 0 {
			t.Fatalf("row: method %q pool %q shard %v", row.Method, row.Pool, row.CRLShard)
		}
	})
}
