package revocation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
	"github.com/workerca/workerca/web"
	xocsp "golang.org/x/crypto/ocsp"
)

// benchCA is a started revocation service over a real SQLite ledger with
// one enrolled worker, and an OCSP request for its certificate.
type benchCA struct {
	svc  *revocation.Service
	srv  *web.Server
	req  []byte
	leaf *x509.Certificate
}

func newBenchCA(b *testing.B) *benchCA {
	b.Helper()
	ctx := context.Background()
	st := storetest.Open(b, store.DriverSQLite)
	h := catest.NewHierarchy(b, time.Now().Add(-time.Hour))
	p, err := ca.NewProfile(ca.ProfileConfig{Name: "default", TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	es, err := enroll.New(enroll.Config{
		Issuer: h.Issuer(b, ca.Config{CRLBaseURL: "http://ca.example.com", CRLShards: 4}), Ledger: st, TrustDomain: "workers.example.com",
		Pools: []enroll.Pool{{Profile: p, Methods: []string{enroll.MethodToken}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := es.CreateToken(ctx, enroll.TokenRequest{Pool: "default", WorkerID: "w-1", TTL: time.Hour, CreatedBy: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	res, err := es.EnrollToken(ctx, tok.Value, catest.CSR(b, catest.Key(b, ca.KeyP256)))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := revocation.New(revocation.Config{Ledger: st, Issuer: h.Intermediate, Signer: h.IntermediateKey,
		CRLBaseURL: "http://ca.example.com", CRLShards: 4, IssueResponder: es.IssueResponder, StatusKey: catest.Key(b, ca.KeyP256)})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	req, err := xocsp.CreateRequest(res.Certificate, h.Intermediate, &xocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := registry.New(registry.Config{Ledger: st, ReceiptKey: catest.Key(b, ca.KeyP256)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := web.New(web.Config{Registry: reg, Enroll: es, Revocation: svc, Store: st, Roots: []*x509.Certificate{h.Root}, Intermediates: []*x509.Certificate{h.Intermediate}})
	if err != nil {
		b.Fatal(err)
	}
	return &benchCA{svc: svc, srv: srv, req: req, leaf: res.Certificate}
}

// BenchmarkOCSPCached is the responder's own cost of a cached answer:
// parse, issuer check, cache hit.
func BenchmarkOCSPCached(b *testing.B) {
	c := newBenchCA(b)
	ctx := context.Background()
	if a := c.svc.OCSP(ctx, c.req); !a.Cacheable {
		b.Fatal("first answer is not cacheable")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if a := c.svc.OCSP(ctx, c.req); !a.Cacheable {
				b.Fatal("answer not from cache")
			}
		}
	})
}

// BenchmarkOCSPCachedHTTP is a cached answer through the real router
// over real HTTP on loopback (GET /ocsp/<base64>, keep-alive): ns/op is
// the inverse of responses per second across GOMAXPROCS clients.
func BenchmarkOCSPCachedHTTP(b *testing.B) {
	c := newBenchCA(b)
	ts := httptest.NewServer(c.srv.Handler())
	b.Cleanup(ts.Close)
	u := ts.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(c.req))
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	get := func() error {
		resp, err := client.Get(u)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	if err := get(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
