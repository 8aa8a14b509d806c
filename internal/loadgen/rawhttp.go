package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// RawRequest is one HTTP/1.1 request rendered once, before a run: the
// load tool then writes the same bytes again and again.
type RawRequest []byte

// NewRawRequest renders method target (an http:// URL) with body (nil for
// none) and contentType as an HTTP/1.1 keep-alive request.
func NewRawRequest(method, target, contentType string, body []byte) (RawRequest, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("loadgen: raw HTTP wants an http:// URL, got %q", target)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: workerca-bench\r\n", method, u.RequestURI(), u.Host)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n", contentType, len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes(), nil
}

// RawConn is one client's keep-alive HTTP/1.1 connection to a plain HTTP
// server, with the least work per request a load tool can do: write the
// pre-rendered request, read the status line, headers and a
// Content-Length body. It is what wrk does, so that the tool spends its
// CPU share on asking, not on net/http's machinery. It is for one
// goroutine. It reads only what a load test needs: a chunked or
// length-less answer is an error, and the connection is dialed again
// after any error or a "Connection: close".
type RawConn struct {
	addr    string
	timeout time.Duration
	conn    net.Conn
	r       *bufio.Reader
}

// NewRawConn returns a connection to host:port, dialed on first use; each
// request must complete within timeout (0: no limit).
func NewRawConn(addr string, timeout time.Duration) *RawConn {
	return &RawConn{addr: addr, timeout: timeout}
}

// ErrRawResponse reports an answer RawConn cannot read.
var ErrRawResponse = errors.New("loadgen: unreadable HTTP answer")

// Do sends req and reads the answer's status and body into body (reset
// first), which it returns.
func (c *RawConn) Do(req RawRequest, body *bytes.Buffer) (status int, err error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, dialTimeout(c.timeout))
		if err != nil {
			return 0, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.timeout > 0 {
		if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	if _, err := c.conn.Write(req); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, fmt.Errorf("%w: status line %q", ErrRawResponse, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("%w: status line %q", ErrRawResponse, line)
	}
	length, closeAfter := -1, false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("%w: header %q", ErrRawResponse, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, fmt.Errorf("%w: Content-Length %q", ErrRawResponse, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("%w: Transfer-Encoding %q", ErrRawResponse, value)
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			closeAfter = true
		}
	}
	body.Reset()
	switch {
	case status == 204 || status == 304:
	case length < 0:
		return 0, fmt.Errorf("%w: no Content-Length", ErrRawResponse)
	case length > 1<<20:
		return 0, fmt.Errorf("%w: body of %d bytes", ErrRawResponse, length)
	default:
		if _, err := io.CopyN(body, c.r, int64(length)); err != nil {
			return 0, err
		}
	}
	if closeAfter {
		c.Close()
	}
	return status, nil
}

// Close closes the connection; the next Do dials again.
func (c *RawConn) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

func dialTimeout(t time.Duration) time.Duration {
	if t <= 0 {
		return 30 * time.Second
	}
	return t
}
