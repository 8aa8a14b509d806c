package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// evidence fetches the method's evidence from the provider's metadata
// service, binding nonce where the provider can carry one.
func (a *Agent) evidence(ctx context.Context, nonce string) (any, error) {
	switch a.cfg.Method {
	case MethodAWS:
		return a.awsEvidence(ctx)
	case MethodGCP:
		return a.gcpEvidence(ctx, nonce)
	case MethodAzure:
		return a.azureEvidence(ctx, nonce)
	}
	return nil, fmt.Errorf("agent: method %q has no metadata evidence", a.cfg.Method)
}

// metadataGet does one request to a metadata service (plain HTTP on a
// link-local address; no proxy) and returns the body of a 200.
func (a *Agent) metadataGet(ctx context.Context, method, u string, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMetadata, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: a.cfg.Timeout, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w (is this host on that cloud? the endpoint is set with --metadata-url)", ErrMetadata, method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMetadata, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s %s answered %s", ErrMetadata, method, u, resp.Status)
	}
	return body, nil
}

// awsEvidence is IMDSv2: a session token by PUT, then the identity
// document and its RSA-2048 PKCS#7 signature with that token.
func (a *Agent) awsEvidence(ctx context.Context) (any, error) {
	base := strings.TrimRight(a.cfg.Metadata.AWS, "/")
	tok, err := a.metadataGet(ctx, http.MethodPut, base+"/latest/api/token", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"60"}})
	if err != nil {
		return nil, err
	}
	h := http.Header{"X-Aws-Ec2-Metadata-Token": {strings.TrimSpace(string(tok))}}
	doc, err := a.metadataGet(ctx, http.MethodGet, base+"/latest/dynamic/instance-identity/document", h)
	if err != nil {
		return nil, err
	}
	sig, err := a.metadataGet(ctx, http.MethodGet, base+"/latest/dynamic/instance-identity/rsa2048", h)
	if err != nil {
		return nil, err
	}
	// document must be the exact bytes IMDS returned.
	return map[string]string{"document": string(doc), "pkcs7": strings.TrimSpace(string(sig))}, nil
}

// Audience is the gcp-iit audience the CA expects: its URL's
// /v1/enroll with the nonce.
func (a *Agent) Audience(nonce string) string {
	return a.ca.String() + "/v1/enroll?nonce=" + url.QueryEscape(nonce)
}

// gcpEvidence asks the metadata server for a format=full identity token
// whose audience carries our nonce.
func (a *Agent) gcpEvidence(ctx context.Context, nonce string) (any, error) {
	q := url.Values{"audience": {a.Audience(nonce)}, "format": {"full"}}
	u := strings.TrimRight(a.cfg.Metadata.GCP, "/") + "/computeMetadata/v1/instance/service-accounts/default/identity?" + q.Encode()
	tok, err := a.metadataGet(ctx, http.MethodGet, u, http.Header{"Metadata-Flavor": {"Google"}})
	if err != nil {
		return nil, err
	}
	return map[string]string{"token": strings.TrimSpace(string(tok))}, nil
}

// azureEvidence asks IMDS for an attested document carrying our nonce
// and sends its signature (the PKCS#7).
func (a *Agent) azureEvidence(ctx context.Context, nonce string) (any, error) {
	q := url.Values{"api-version": {"2021-02-01"}, "nonce": {nonce}}
	u := strings.TrimRight(a.cfg.Metadata.Azure, "/") + "/metadata/attested/document?" + q.Encode()
	body, err := a.metadataGet(ctx, http.MethodGet, u, http.Header{"Metadata": {"true"}})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Signature == "" {
		return nil, fmt.Errorf("%w: Azure IMDS answer has no signature", ErrMetadata)
	}
	return map[string]string{"document": doc.Signature}, nil
}
