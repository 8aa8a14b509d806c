package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/apierror"
)

// apiClient is an operator's client of a running CA's HTTPS API (revoke,
// bench): the CA's base URL, the roots its certificate chains to, and an
// API key sent as a bearer token.
type apiClient struct {
	base  string // no trailing slash
	key   string
	roots *x509.CertPool
	http  *http.Client
}

// apiClientConfig says how an apiClient reaches the CA.
type apiClientConfig struct {
	// URL is the CA's base URL ("https://ca.example.com:8443").
	URL string
	// RootFile is a PEM file of the roots the CA's HTTPS certificate
	// chains to.
	RootFile string
	// KeyFile holds the API key; empty sends none.
	KeyFile string
	// Conns is how many keep-alive connections to keep open to the CA;
	// 0 means 2, Go's default.
	Conns int
	// Timeout bounds each request, reading the answer included; 0 means a
	// minute.
	Timeout time.Duration
}

func newAPIClient(cfg apiClientConfig) (*apiClient, error) {
	// The API key never goes over plain HTTP (the CA would refuse the
	// request, but only after the key had crossed the network).
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.Scheme != "https" {
		return nil, usageError{fmt.Sprintf("CA URL %q: want https://host:port", cfg.URL)}
	}
	var key string
	if cfg.KeyFile != "" {
		if key, err = readAPIKey(cfg.KeyFile); err != nil {
			return nil, err
		}
	}
	roots, err := readRoots(cfg.RootFile)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	return &apiClient{
		base: strings.TrimSuffix(cfg.URL, "/"), key: key, roots: roots,
		http: &http.Client{Timeout: timeout, Transport: newTransport(roots, cfg.Conns, timeout)},
	}, nil
}

// readAPIKey reads an API key file (admin.token, or one an operator
// saved): the key, surrounding white space trimmed.
func readAPIKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("%s holds no API key", path)
	}
	return key, nil
}

// readRoots reads a PEM file of trust anchors into a pool.
func readRoots(path string) (*x509.CertPool, error) {
	certs, err := ca.ReadCertificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// newTransport is an HTTP/1.1 transport that trusts roots (for https
// URLs) and keeps conns connections per host alive (0: Go's default of
// 2). timeout bounds connecting, the TLS handshake and the wait for an
// answer's headers; 0 means no bound there. It reads no proxy settings
// from the environment.
func newTransport(roots *x509.CertPool, conns int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          max(conns, 100),
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
	}
}

// apiError is a refusal from the CA: its HTTP status and, when the body
// is the JSON error of DESIGN.md, its code and message.
type apiError struct {
	Status        int
	Code, Message string
	Body          []byte
}

func (e *apiError) Error() string {
	return fmt.Sprintf("the CA refused (%d): %s", e.Status, bytes.TrimSpace(e.Body))
}

// newAPIError reads the JSON error body {"error":{"code","message"}} if
// there is one.
func newAPIError(status int, body []byte) *apiError {
	e := &apiError{Status: status, Body: body}
	if d, ok := apierror.Parse(body); ok {
		e.Code, e.Message = d.Code, d.Message
	}
	return e
}

// postJSON posts in as JSON to path with the API key and returns the
// body of a 2xx answer; any other answer is an *apiError.
func (c *apiClient) postJSON(ctx context.Context, path string, in any) ([]byte, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, newAPIError(resp.StatusCode, out)
	}
	return out, nil
}
