package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/workerca/workerca/internal/apierror"
)

// maxBody caps what the agent reads from the CA or a metadata service.
const maxBody = 1 << 20

// parsePin reads "sha256:<64 hex digits>".
func parsePin(pin string) ([]byte, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(pin)), "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("agent: pin %q must be sha256:<64 hex digits> of the root's SubjectPublicKeyInfo", pin)
	}
	return b, nil
}

// SPKIPin returns the pin of cert: "sha256:" and the hex SHA-256 of its
// SubjectPublicKeyInfo DER (what `openssl x509 -pubkey -noout | openssl
// pkey -pubin -outform DER | sha256sum` prints).
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parseCerts reads every CERTIFICATE block of b; anything else is an
// error, as is no certificate at all.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("agent: unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return nil, errors.New("agent: trailing data after the PEM certificates")
	}
	if len(out) == 0 {
		return nil, errors.New("agent: no certificate in PEM data")
	}
	return out, nil
}

func encodeCerts(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// bundle returns the trust anchors: bundle.pem when present (and holding
// the pinned root, if a pin is set), else the CA's bundle fetched and
// checked against the pin, then written to bundle.pem.
func (a *Agent) bundle(ctx context.Context) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(a.cfg.Dir, FileBundle))
	switch {
	case err == nil:
		roots, err := parseCerts(b)
		if err != nil {
			return nil, permanent(fmt.Errorf("%s: %w", FileBundle, err), "remove it to fetch the bundle again with --ca-pin")
		}
		if a.cfg.Pin != "" {
			if _, err := a.pinned(roots); err != nil {
				return nil, permanent(fmt.Errorf("%s: %w", FileBundle, err), "the kept bundle does not hold the pinned root: check --ca-pin, or remove bundle.pem to fetch it again")
			}
		}
		return roots, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, permanent(fmt.Errorf("agent: %w", err), "")
	}
	if a.cfg.Pin == "" {
		return nil, permanent(ErrNoTrust, "give --ca-pin sha256:<hex> (workerca prints it; or hash root.crt's public key)")
	}
	roots, err := a.fetchPinnedBundle(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.writeFiles(fileWrite{FileBundle, encodeCerts(roots...), 0o644}); err != nil {
		return nil, err
	}
	a.log.InfoContext(ctx, "trust bundle fetched and pinned", "roots", len(roots), "pin", a.cfg.Pin)
	return roots, nil
}

// pinned returns the root among roots whose SPKI matches the pin.
func (a *Agent) pinned(roots []*x509.Certificate) (*x509.Certificate, error) {
	want, err := parsePin(a.cfg.Pin)
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, r := range roots {
		sum := sha256.Sum256(r.RawSubjectPublicKeyInfo)
		if bytes.Equal(sum[:], want) {
			return r, nil
		}
		seen = append(seen, SPKIPin(r))
	}
	return nil, fmt.Errorf("%w: want %s, the CA offered %s", ErrPinMismatch, a.cfg.Pin, strings.Join(seen, ", "))
}

// fetchPinnedBundle is the first contact. The TLS server is not yet
// authenticated, so the GET carries nothing secret; the answer is
// believed only if a root in it matches the pin AND the server's own TLS
// chain on that very connection verifies to that root. Only the roots
// that verify the connection's certificate are kept.
func (a *Agent) fetchPinnedBundle(ctx context.Context) ([]*x509.Certificate, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // verified below against the pin
	resp, body, err := a.do(ctx, a.client(tc), "bundle", http.MethodGet, "/v1/bundle", "", nil, nil)
	if err != nil {
		return nil, err
	}
	roots, err := parseCerts(body)
	if err != nil {
		return nil, permanent(fmt.Errorf("agent: the CA's /v1/bundle: %w", err), "")
	}
	root, err := a.pinned(roots)
	if err != nil {
		return nil, permanent(err, "check --ca-pin and --ca: nothing was sent to this server")
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, permanent(errors.New("agent: the CA presented no TLS certificate"), "")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if err := a.verifyServer(resp.TLS, pool); err != nil {
		return nil, permanent(fmt.Errorf("%w: the server's TLS certificate does not chain to the pinned root: %w", ErrPinMismatch, err), "check --ca: nothing was sent to this server")
	}
	keep := []*x509.Certificate{root}
	for _, r := range roots {
		if r != root {
			keep = append(keep, r)
		}
	}
	return keep, nil
}

// verifyServer checks the connection's server chain against roots and the
// URL's host at the agent's clock.
func (a *Agent) verifyServer(cs *tls.ConnectionState, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: a.ca.Hostname(), CurrentTime: a.cfg.Clock(),
	})
	return err
}

// trustedTLS is a TLS config that authenticates the CA with roots, at the
// agent's clock, and presents cert when not nil.
func (a *Agent) trustedTLS(roots []*x509.Certificate, cert *tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Time: a.cfg.Clock}
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return tc
}

// client is a one-use HTTP client over tc; it does not follow redirects
// (a redirect could carry the token elsewhere).
func (a *Agent) client(tc *tls.Config) *http.Client {
	return &http.Client{
		Timeout:       a.cfg.Timeout,
		Transport:     &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends one request to the CA and returns the answer's body on 2xx, a
// *ServerError otherwise.
func (a *Agent) do(ctx context.Context, c *http.Client, op, method, path, contentType string, header http.Header, body []byte) (*http.Response, []byte, error) {
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, a.ca.String()+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %s: %w", op, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "workerca-agent")
	resp, err := c.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return nil, nil, permanent(fmt.Errorf("agent: %s: the CA's TLS certificate does not verify against bundle.pem: %w", op, err), "")
		}
		return nil, nil, fmt.Errorf("agent: %s: %w", op, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %s: reading the answer: %w", op, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, rb, nil
	}
	se := &ServerError{Op: op, Status: resp.StatusCode}
	if d, ok := apierror.Parse(rb); ok {
		se.Code, se.Message = d.Code, d.Message
	} else {
		se.Message = strings.TrimSpace(string(rb[:min(len(rb), 200)]))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.RetryAfter = time.Duration(s) * time.Second
	}
	return resp, nil, se
}
