package loadgen_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerca/workerca/internal/loadgen"
)

// TestRawConn runs GET and POST requests over one keep-alive connection
// to a real net/http server, and shows that the connection is reused,
// dialed again after the server closes it, and that answers it cannot
// read are errors.
func TestRawConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Content-Type"), b)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/chunked":
			w.Write([]byte("a"))
			w.(http.Flusher).Flush()
			w.Write([]byte("b"))
		case "/empty":
			w.WriteHeader(http.StatusNotModified)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := loadgen.NewRawConn(addr, 5*time.Second)
	defer c.Close()
	var body bytes.Buffer
	do := func(req loadgen.RawRequest) (int, string, error) {
		t.Helper()
		st, err := c.Do(req, &body)
		return st, body.String(), err
	}
	must := func(method, path, ct string, b []byte) loadgen.RawRequest {
		t.Helper()
		r, err := loadgen.NewRawRequest(method, srv.URL+path, ct, b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	get := must(http.MethodGet, "/echo", "", nil)
	post := must(http.MethodPost, "/echo", "application/ocsp-request", []byte("\x30\x03abc"))
	for i := range 3 {
		if st, b, err := do(get); err != nil || st != 200 || b != "GET  " {
			t.Fatalf("GET %d: %d %q %v", i, st, b, err)
		}
		if st, b, err := do(post); err != nil || st != 200 || b != "POST application/ocsp-request \x30\x03abc" {
			t.Fatalf("POST %d: %d %q %v", i, st, b, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 6 requests, want 1 (keep-alive)", n)
	}
	if st, b, err := do(must(http.MethodGet, "/nope", "", nil)); err != nil || st != 404 || !strings.Contains(b, "not found") {
		t.Errorf("404: %d %q %v", st, b, err)
	}
	if st, b, err := do(must(http.MethodGet, "/close", "", nil)); err != nil || st != 200 || b != "bye" {
		t.Errorf("close: %d %q %v", st, b, err)
	}
	if st, _, err := do(get); err != nil || st != 200 {
		t.Errorf("after close: %d %v", st, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (dialed again after Connection: close)", n)
	}
	if st, _, err := do(must(http.MethodGet, "/empty", "", nil)); err != nil || st != 304 {
		t.Errorf("304: %d %v", st, err)
	}
	if _, _, err := do(must(http.MethodGet, "/chunked", "", nil)); !errors.Is(err, loadgen.ErrRawResponse) {
		t.Errorf("chunked answer: %v, want ErrRawResponse", err)
	}
	if st, _, err := do(get); err != nil || st != 200 {
		t.Errorf("after an unreadable answer: %d %v", st, err)
	}
	if _, err := loadgen.NewRawRequest(http.MethodGet, "https://example.com/", "", nil); err == nil {
		t.Error("NewRawRequest accepted an https URL")
	}
	dead := loadgen.NewRawConn("127.0.0.1:1", time.Second)
	if _, err := dead.Do(get, &body); err == nil {
		t.Error("Do to a closed port succeeded")
	}
}
