package verifier_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/verifier"
)

var _ verifier.StatusSource = (*verifier.HTTPStatus)(nil)

const (
	// testTrustDomain is the harness CA's trust domain.
	testTrustDomain = "workers.example.com"
	// testCRLBase is the CRL base URL the certificates name.
	testCRLBase = "http://ca.workers.test:8080"
	// testShards is the number of CRL shards.
	testShards = 4
	// testCertTTL is the lifetime of worker certificates.
	testCertTTL = time.Hour
)

// testStart is where a harness's clock starts.
var testStart = catest.Epoch.Add(7*time.Minute + 23*time.Second)

// testClock is a settable clock shared by the CA and the verifier.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// harness is a real CA over a real store: an enrollment service issuing
// worker certificates with sharded CDPs into the ledger, a started
// revocation service whose status key also signs receipts.
type harness struct {
	clock     *testClock
	h         *catest.Hierarchy
	ra        *enroll.Service
	svc       *revocation.Service
	statusKey crypto.Signer
	receipts  *artifact.ReceiptSigner
}

// newHarness builds the CA on a fresh store of driver, with the pools
// "build" and "deploy".
func newHarness(t *testing.T, driver string) *harness {
	t.Helper()
	st := storetest.Open(t, driver)
	clock := &testClock{now: testStart}
	hier := catest.NewHierarchy(t, catest.Epoch.Add(-time.Hour))
	iss := hier.Issuer(t, ca.Config{Clock: clock.Now, CRLBaseURL: testCRLBase, CRLShards: testShards})
	var pools []enroll.Pool
	for _, name := range []string{"build", "deploy"} {
		p, err := ca.NewProfile(ca.ProfileConfig{Name: name, TTL: testCertTTL})
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, enroll.Pool{Profile: p, Methods: []string{enroll.MethodToken}})
	}
	ra, err := enroll.New(enroll.Config{Issuer: iss, Ledger: st, TrustDomain: testTrustDomain, Pools: pools, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	statusKey := catest.Key(t, ca.KeyP256)
	svc, err := revocation.New(revocation.Config{
		Ledger: st, Issuer: hier.Intermediate, Signer: hier.IntermediateKey,
		CRLBaseURL: testCRLBase, CRLShards: testShards, IssueResponder: ra.IssueResponder,
		StatusKey: statusKey, Clock: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	receipts, err := artifact.NewReceiptSigner(statusKey)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{clock: clock, h: hier, ra: ra, svc: svc, statusKey: statusKey, receipts: receipts}
}

// worker is an enrolled worker: its key and chain (leaf, intermediate).
type worker struct {
	key    crypto.Signer
	chain  []*x509.Certificate
	serial string
}

func (w worker) leaf() *x509.Certificate { return w.chain[0] }

// enroll issues and records a certificate for a fresh P-256 key with a
// one-time token, as POST /v1/enroll/token does.
func (h *harness) enroll(t *testing.T, pool, name string) worker {
	t.Helper()
	ctx := t.Context()
	tok, err := h.ra.CreateToken(ctx, enroll.TokenRequest{Pool: pool, WorkerID: name, TTL: time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	key := catest.Key(t, ca.KeyP256)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: catest.CSR(t, key)})
	res, err := h.ra.EnrollToken(ctx, tok.Value, csr)
	if err != nil {
		t.Fatal(err)
	}
	return worker{key: key, chain: res.Chain, serial: res.Serial}
}

// sign signs content's SHA-256 with w and returns the digest and JWS.
func sign(t *testing.T, w worker, content string) (string, string) {
	t.Helper()
	d := digestOf(content)
	jws, err := artifact.Sign(artifact.Signer{Key: w.key, Chain: w.chain}, artifact.Payload{SHA256: d, Name: "app.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	return d, jws
}

// digestOf is the lowercase hex SHA-256 of s: an artifact's digest, or a
// signature's hash as a receipt carries it.
func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// registration is a signature registered with the CA: by w, of digest,
// the compact jws, kept for keep.
type registration struct {
	w           worker
	digest, jws string
	keep        time.Duration
}

// receipt is what the CA answers a registration now.
func (h *harness) receipt(t *testing.T, reg registration) string {
	t.Helper()
	now := h.clock.Now()
	r, err := h.receipts.Sign(artifact.Receipt{
		SHA256: reg.digest, Serial: reg.w.serial, SPIFFEID: reg.w.leaf().URIs[0].String(),
		RegisteredAt: now, ExpiresAt: now.Add(reg.keep), SignatureSHA256: digestOf(reg.jws),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// revoke revokes now, as POST /v1/admin/revocations does.
func (h *harness) revoke(t *testing.T, req revocation.Request) {
	t.Helper()
	req.Actor = "test"
	if _, err := h.svc.Revoke(t.Context(), req); err != nil {
		t.Fatal(err)
	}
}

// serviceStatus is a StatusSource over the revocation service itself:
// its signed answers, verified with its JWKS.
type serviceStatus struct{ svc *revocation.Service }

func (s serviceStatus) Status(ctx context.Context, serial string, at time.Time) (*revocation.Status, error) {
	var p *time.Time
	if !at.IsZero() {
		p = &at
	}
	jws, _, err := s.svc.Status(ctx, serial, p)
	if err != nil {
		return nil, err
	}
	return verifier.ParseStatus(jws, s.svc.StatusKeys())
}

// config is a verifier Config trusting h's root, with its status service
// and status keys, on h's clock.
func (h *harness) config() verifier.Config {
	return verifier.Config{
		Roots: h.h.Roots(), StatusKeys: h.svc.StatusKeys(),
		Status: serviceStatus{h.svc}, Clock: h.clock.Now,
	}
}

// crlEntry is a CRL entry for w.
type crlEntry struct {
	w          worker
	revokedAt  time.Time
	reason     revocation.Reason
	invalidity *time.Time
}

// crl builds the CRL of the shard of w (the shard its CDP names), signed
// by the intermediate, issued now and valid for a day.
func (h *harness) crl(t *testing.T, w worker, entries ...crlEntry) *x509.RevocationList {
	t.Helper()
	return h.buildCRL(t, crlSpec{dp: w.leaf().CRLDistributionPoints[0], thisUpdate: h.clock.Now(), entries: entries})
}

// crlSpec is a CRL to build: its distribution point, issue time and
// entries.
type crlSpec struct {
	dp         string
	thisUpdate time.Time
	entries    []crlEntry
}

func (h *harness) buildCRL(t *testing.T, spec crlSpec) *x509.RevocationList {
	t.Helper()
	dp, thisUpdate := spec.dp, spec.thisUpdate
	var es []revocation.CRLEntry
	for _, e := range spec.entries {
		es = append(es, revocation.CRLEntry{Serial: e.w.leaf().SerialNumber, RevokedAt: e.revokedAt, Reason: int(e.reason), InvalidityDate: e.invalidity})
	}
	der, err := revocation.BuildCRL(revocation.CRLRequest{
		Issuer: h.h.Intermediate, Signer: h.h.IntermediateKey, Number: big.NewInt(thisUpdate.Unix()),
		ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour), DistributionPoint: dp, Entries: es,
	})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// otherShard is the CRL URL of a shard w is not on.
func otherShard(w worker) string {
	shard := ca.CRLShard(w.leaf().SerialNumber, testShards)
	return ca.CRLShardURL(testCRLBase, (shard+1)%testShards)
}

func at(t time.Time) *time.Time { return &t }
