package workertls_test

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/workertls"
)

func TestAllowPools(t *testing.T) {
	t.Parallel()
	td := spiffeid.RequireTrustDomainFromString("workers.test")
	allow := workertls.AllowPools(td, "ci", "gpu")
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{
		{"ok/ci", "spiffe://workers.test/worker/ci/w1", true},
		{"ok/gpu", "spiffe://workers.test/worker/gpu/w1", true},
		{"fail/other-pool", "spiffe://workers.test/worker/web/w1", false},
		{"fail/other-trust-domain", "spiffe://other.test/worker/ci/w1", false},
		{"fail/not-a-worker-path", "spiffe://workers.test/service/ci/w1", false},
		{"fail/too-deep", "spiffe://workers.test/worker/ci/w1/x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := allow(spiffeid.RequireFromString(tc.id)); (err == nil) != tc.ok {
				t.Errorf("AllowPools(%s) = %v, want ok=%v", tc.id, err, tc.ok)
			}
		})
	}
	only := workertls.AllowIDs(spiffeid.RequireFromString("spiffe://workers.test/worker/ci/w1"))
	if only(spiffeid.RequireFromString("spiffe://workers.test/worker/ci/w1")) != nil || only(spiffeid.RequireFromString("spiffe://workers.test/worker/ci/w2")) == nil {
		t.Error("AllowIDs does not allow exactly its IDs")
	}
}

// writeDir writes the agent layout for key and leaf of h.
func writeDir(t *testing.T, dir string, h *catest.Hierarchy, key crypto.Signer, leaf *x509.Certificate) {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	for name, data := range map[string][]byte{
		"key.pem":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"chain.pem":  append(certPEM(leaf), certPEM(h.Intermediate)...),
		"bundle.pem": certPEM(h.Root),
	} {
		writeAtomic(t, filepath.Join(dir, name), data)
	}
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestSourceKeepsLastGoodPair: a key replaced before its certificate (the
// agent's two renames) never pairs with the old certificate; the new pair
// is served once both are in place.
func TestSourceKeepsLastGoodPair(t *testing.T) {
	t.Parallel()
	now := catest.Epoch
	h := catest.NewHierarchy(t, now.Add(-time.Hour))
	dir := t.TempDir()
	k1 := catest.Key(t, ca.KeyP256)
	c1 := h.Worker(t, k1, "ci", "w1", now, time.Hour)
	writeDir(t, dir, h, k1, c1)
	src, err := workertls.NewSource(t.Context(), workertls.SourceConfig{Dir: dir, ReloadInterval: -1, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Certificate().Leaf.SerialNumber; got.Cmp(c1.SerialNumber) != 0 {
		t.Fatalf("serial %x, want %x", got, c1.SerialNumber)
	}

	k2 := catest.Key(t, ca.KeyP256)
	c2 := h.Worker(t, k2, "ci", "w1", now, time.Hour)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k2)
	writeAtomic(t, filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	got := src.Certificate()
	if got.Leaf.SerialNumber.Cmp(c1.SerialNumber) != 0 || !got.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k1) {
		t.Fatal("after the key alone changed, the source does not serve the old pair")
	}

	writeDir(t, dir, h, k2, c2)
	got = src.Certificate()
	if got.Leaf.SerialNumber.Cmp(c2.SerialNumber) != 0 || !got.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k2) {
		t.Fatal("the renewed pair was not picked up")
	}

	if _, err := workertls.NewSource(t.Context(), workertls.SourceConfig{Dir: t.TempDir()}); !errors.Is(err, workertls.ErrFiles) {
		t.Errorf("NewSource(empty dir) = %v, want ErrFiles", err)
	}
}

// TestServerCRL checks a worker against CRLs served by httptest: real
// certificates whose CDP is the test server, real CRLs from
// revocation.BuildCRL.
func TestServerCRL(t *testing.T) {
	t.Parallel()
	now := catest.Epoch
	h := catest.NewHierarchy(t, now.Add(-time.Hour))
	other := catest.NewHierarchy(t, now.Add(-time.Hour))

	var crl atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := crl.Load(); b != nil {
			w.Write(*b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)

	iss := h.Issuer(t, ca.Config{Clock: func() time.Time { return now }, CRLBaseURL: srv.URL})
	profile, err := ca.NewProfile(ca.ProfileConfig{Name: "ci", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := iss.Issue(ca.IssueRequest{
		CSR: catest.ParsedCSR(t, catest.Key(t, ca.KeyP256)), Profile: profile,
		Identity: ca.Identity{TrustDomain: "workers.test", Pool: "ci", WorkerID: "w1", Method: "token"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.CRLDistributionPoints) != 1 {
		t.Fatalf("leaf CDP %q", leaf.CRLDistributionPoints)
	}
	cdp := leaf.CRLDistributionPoints[0]
	build := func(signer *catest.Hierarchy, dp string, revoked ...*big.Int) []byte {
		var entries []revocation.CRLEntry
		for _, s := range revoked {
			entries = append(entries, revocation.CRLEntry{Serial: s, RevokedAt: now.Add(-time.Minute), Reason: 1})
		}
		der, err := revocation.BuildCRL(revocation.CRLRequest{
			Issuer: signer.Intermediate, Signer: signer.IntermediateKey, Number: big.NewInt(1),
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), DistributionPoint: dp, Entries: entries,
		})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	td := spiffeid.RequireTrustDomainFromString("workers.test")
	for _, tc := range []struct {
		name     string
		crl      []byte
		failOpen bool
		want     error
	}{
		{"ok/not-listed", build(h, cdp, big.NewInt(12345)), false, nil},
		{"fail/revoked", build(h, cdp, leaf.SerialNumber), false, workertls.ErrRevoked},
		{"fail/idp-names-another-shard", build(h, srv.URL+"/crl/other.crl"), false, workertls.ErrRevocationUnavailable},
		{"fail/crl-of-another-ca", build(other, cdp), false, workertls.ErrRevocationUnavailable},
		{"fail/crl-unreachable", nil, false, workertls.ErrRevocationUnavailable},
		{"ok/crl-unreachable-fail-open", nil, true, nil},
		{"fail/revoked-fail-open", build(h, cdp, leaf.SerialNumber), true, workertls.ErrRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: the subtests share the CRL server.
			if tc.crl == nil {
				crl.Store(nil)
			} else {
				crl.Store(&tc.crl)
			}
			cfg, err := workertls.NewServerConfig(t.Context(), workertls.ServerConfig{
				Bundle: h.Roots(), Certificate: &tls.Certificate{}, Authorize: workertls.AllowPools(td, "ci"),
				FailOpen: tc.failOpen, Clock: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf, h.Intermediate}})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("VerifyConnection = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("fail/not-authorized", func(t *testing.T) {
		cfg, err := workertls.NewServerConfig(t.Context(), workertls.ServerConfig{
			Bundle: h.Roots(), Certificate: &tls.Certificate{}, Authorize: workertls.AllowPools(td, "gpu"),
			Clock: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf, h.Intermediate}})
		if !errors.Is(err, workertls.ErrNotAuthorized) || !strings.Contains(err.Error(), "gpu") {
			t.Errorf("VerifyConnection = %v, want ErrNotAuthorized", err)
		}
	})
	t.Run("fail/expired", func(t *testing.T) {
		cfg, err := workertls.NewServerConfig(t.Context(), workertls.ServerConfig{
			Bundle: h.Roots(), Certificate: &tls.Certificate{}, Authorize: workertls.AllowPools(td, "ci"),
			Clock: func() time.Time { return now.Add(2 * time.Hour) },
		})
		if err != nil {
			t.Fatal(err)
		}
		err = cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf, h.Intermediate}})
		if !errors.Is(err, workertls.ErrUntrusted) {
			t.Errorf("VerifyConnection = %v, want ErrUntrusted", err)
		}
	})
	t.Run("fail/no-authorizer", func(t *testing.T) {
		_, err := workertls.NewServerConfig(t.Context(), workertls.ServerConfig{Bundle: h.Roots(), Certificate: &tls.Certificate{}})
		if !errors.Is(err, workertls.ErrConfig) {
			t.Errorf("NewServerConfig without Authorize = %v, want ErrConfig", err)
		}
	})
}
