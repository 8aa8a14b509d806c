package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/workerca/workerca/enroll/tpmwire"
)

// Certificate describes the certificate the agent holds after Enroll or
// Renew.
type Certificate struct {
	// Leaf is the worker certificate.
	Leaf *x509.Certificate
	// Chain is the leaf followed by its intermediates.
	Chain []*x509.Certificate
}

// SPIFFEID returns the certificate's URI SAN, its SPIFFE ID.
func (c *Certificate) SPIFFEID() string {
	if len(c.Leaf.URIs) == 0 {
		return ""
	}
	return c.Leaf.URIs[0].String()
}

// newKey makes a key of the configured type with the agent's randomness.
func (a *Agent) newKey() (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	switch a.cfg.KeyType {
	case KeyP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), a.cfg.Rand)
	case KeyEd25519:
		_, k, err = ed25519.GenerateKey(a.cfg.Rand)
	default:
		k, err = ecdsa.GenerateKey(elliptic.P256(), a.cfg.Rand)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: generating a key: %w", err)
	}
	return k, nil
}

// newCSR makes a key and a PEM CSR for it. The CA ignores the CSR's
// names (the identity comes from the evidence), so it has none.
func (a *Agent) newCSR() (crypto.Signer, []byte, error) {
	key, err := a.newKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := a.csrFor(key)
	if err != nil {
		return nil, nil, err
	}
	return key, csr, nil
}

// Enroll proves the worker's identity with the configured method and
// installs the new key and certificate. On first contact it fetches the
// trust bundle and checks it against the pin before sending anything.
// With method tpm the key is made in the TPM and key.tpm.json names it.
func (a *Agent) Enroll(ctx context.Context) (*Certificate, error) {
	if a.cfg.Method == "" {
		return nil, permanent(errors.New("agent: no enrollment method configured"), "give --method")
	}
	roots, err := a.bundle(ctx)
	if err != nil {
		return nil, err
	}
	var (
		key  crypto.Signer
		csr  []byte
		body []byte
	)
	switch a.cfg.Method {
	case MethodTPM:
		key, body, err = a.enrollTPM(ctx, roots)
	case MethodToken:
		if key, csr, err = a.newCSR(); err == nil {
			body, err = a.enrollToken(ctx, roots, csr)
		}
	default:
		if key, csr, err = a.newCSR(); err == nil {
			body, err = a.enrollJSON(ctx, roots, csr)
		}
	}
	if err != nil {
		return nil, err
	}
	cert, err := a.accept(body, key, roots, a.cfg.Method == MethodToken)
	if err != nil {
		a.dropTPMKey(ctx, key)
		return nil, err
	}
	a.log.InfoContext(ctx, "enrolled", "method", a.cfg.Method, "spiffe_id", cert.SPIFFEID(),
		"serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter)
	return cert, nil
}

// readToken reads the token file: one line, surrounding space trimmed.
func (a *Agent) readToken() (string, error) {
	b, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return "", permanent(fmt.Errorf("agent: token file: %w", err), "write the enrollment token (wct_...) to "+a.cfg.TokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", permanent(fmt.Errorf("agent: token file %s must hold one token", a.cfg.TokenFile), "")
	}
	return tok, nil
}

func (a *Agent) enrollToken(ctx context.Context, roots []*x509.Certificate, csr []byte) ([]byte, error) {
	tok, err := a.readToken()
	if err != nil {
		return nil, err
	}
	h := http.Header{"Authorization": {"Bearer " + tok}}
	_, body, err := a.do(ctx, a.client(a.trustedTLS(roots, nil)), "enroll", http.MethodPost, "/v1/enroll/token", "application/pkcs10", h, csr)
	return body, a.refusal(err)
}

// refusal adds advice to a permanent refusal.
func (a *Agent) refusal(err error) error {
	var se *ServerError
	if errors.As(err, &se) && errors.Is(err, ErrPermanent) {
		if adv := advice(se.Code, a.cfg.TokenFile); adv != "" {
			return fmt.Errorf("%w; %s", err, adv)
		}
	}
	return err
}

func (a *Agent) enrollJSON(ctx context.Context, roots []*x509.Certificate, csr []byte) ([]byte, error) {
	c := a.client(a.trustedTLS(roots, nil))
	var nonce string
	if a.cfg.Method != MethodAWS { // AWS documents cannot carry a nonce
		_, body, err := a.do(ctx, c, "challenge", http.MethodPost, "/v1/enroll/challenge", "", nil, nil)
		if err != nil {
			return nil, a.refusal(err)
		}
		var ch struct {
			Nonce string `json:"nonce"`
		}
		if err := json.Unmarshal(body, &ch); err != nil || ch.Nonce == "" {
			return nil, fmt.Errorf("agent: challenge: the CA's answer holds no nonce")
		}
		nonce = ch.Nonce
	}
	ev, err := a.evidence(ctx, nonce)
	if err != nil {
		return nil, err
	}
	req, err := json.Marshal(map[string]any{"method": a.cfg.Method, "csr": string(csr), "nonce": nonce, "evidence": ev, "pool": a.cfg.Pool})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	_, body, err := a.do(ctx, c, "enroll", http.MethodPost, "/v1/enroll", "application/json", nil, req)
	return body, a.refusal(err)
}

// accept parses the CA's answer (a PEM chain, or the JSON of /v1/enroll
// and /v1/renew), checks that it certifies key and chains to roots for
// clientAuth, and installs it.
func (a *Agent) accept(body []byte, key crypto.Signer, roots []*x509.Certificate, pemChain bool) (*Certificate, error) {
	chainPEM := body
	if !pemChain {
		var res struct {
			Chain string `json:"chain"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return nil, fmt.Errorf("agent: the CA's answer is not JSON: %w", err)
		}
		chainPEM = []byte(res.Chain)
	}
	chain, err := parseCerts(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("agent: the CA's chain: %w", err)
	}
	if err := a.check(chain, key, roots); err != nil {
		return nil, err
	}
	if err := a.install(key, chain); err != nil {
		return nil, err
	}
	return &Certificate{Leaf: chain[0], Chain: chain}, nil
}

// check is the agent's own look at what it was given: the leaf holds our
// key and verifies to the bundle for client authentication now.
func (a *Agent) check(chain []*x509.Certificate, key crypto.Signer, roots []*x509.Certificate) error {
	if !publicKeyEqual(key.Public(), chain[0].PublicKey) {
		return permanent(errors.New("agent: the CA's certificate is not for our key"), "")
	}
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range chain[1:] {
		ip.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: a.cfg.Clock(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return permanent(fmt.Errorf("agent: the CA's certificate does not verify to bundle.pem: %w", err), "")
	}
	return nil
}

// Renew asks the CA for a new certificate over mTLS with the current one,
// for a new key, and installs it. A refusal that attesting again fixes
// matches ErrReattest.
func (a *Agent) Renew(ctx context.Context) (*Certificate, error) {
	cur, err := a.load()
	if err != nil {
		return nil, err
	}
	roots, err := a.bundle(ctx)
	if err != nil {
		return nil, err
	}
	if now := a.cfg.Clock(); !now.Before(cur.Leaf.NotAfter) {
		return nil, fmt.Errorf("%w: the certificate expired at %s", ErrReattest, cur.Leaf.NotAfter.Format(time.RFC3339))
	}
	var (
		key     crypto.Signer
		csr     []byte
		certify *tpmwire.Certify
	)
	if ts, ok := cur.PrivateKey.(*tpmSigner); ok {
		key, csr, certify, err = a.renewTPMKey(ctx, ts)
	} else {
		key, csr, err = a.newCSR()
	}
	if err != nil {
		return nil, err
	}
	cert, err := a.renew(ctx, roots, cur, key, csr, certify)
	if err != nil {
		a.dropTPMKey(ctx, key)
		return nil, err
	}
	a.log.InfoContext(ctx, "renewed", "serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter)
	return cert, nil
}

// renew sends csr (with certify, for a TPM key) over mTLS with cur and
// installs the answer for key.
func (a *Agent) renew(ctx context.Context, roots []*x509.Certificate, cur *tls.Certificate, key crypto.Signer, csr []byte, certify *tpmwire.Certify) (*Certificate, error) {
	req, err := json.Marshal(struct {
		CSR        string           `json:"csr"`
		TPMCertify *tpmwire.Certify `json:"tpm_certify,omitempty"`
	}{string(csr), certify})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	_, body, err := a.do(ctx, a.client(a.trustedTLS(roots, cur)), "renew", http.MethodPost, "/v1/renew", "application/json", nil, req)
	if err != nil {
		return nil, a.refusal(err)
	}
	return a.accept(body, key, roots, false)
}

// RefreshBundle fetches /v1/bundle over a connection authenticated by
// the kept bundle and replaces bundle.pem when it changed. A new bundle
// must still hold the pinned root, when a pin is set.
func (a *Agent) RefreshBundle(ctx context.Context) error {
	roots, err := a.bundle(ctx)
	if err != nil {
		return err
	}
	_, body, err := a.do(ctx, a.client(a.trustedTLS(roots, nil)), "bundle", http.MethodGet, "/v1/bundle", "", nil, nil)
	if err != nil {
		return err
	}
	fresh, err := parseCerts(body)
	if err != nil {
		return fmt.Errorf("agent: the CA's /v1/bundle: %w", err)
	}
	if a.cfg.Pin != "" {
		if _, err := a.pinned(fresh); err != nil {
			return fmt.Errorf("agent: refusing the CA's new bundle: %w", err)
		}
	}
	if bytes.Equal(encodeCerts(fresh...), encodeCerts(roots...)) {
		return nil
	}
	if err := a.writeFiles(fileWrite{FileBundle, encodeCerts(fresh...), 0o644}); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "trust bundle updated", "roots", len(fresh))
	return nil
}
