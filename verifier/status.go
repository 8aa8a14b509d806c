package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/apierror"
	"github.com/workerca/workerca/revocation/status"
)

// MaxStatusBytes caps a status answer or a status JWKS read from the
// network; real ones are well under 2 KiB.
const MaxStatusBytes = 64 << 10

// DefaultHTTPTimeout bounds a request of NewHTTPStatus and FetchStatusKeys
// when they are given no client.
const DefaultHTTPTimeout = 30 * time.Second

// HTTPStatus is a StatusSource over the CA's status API:
// GET <base>/v1/status/<serial>[?at=<RFC 3339>], a compact JWS verified
// with pinned status keys.
type HTTPStatus struct {
	base   string
	client *http.Client
	keys   jose.JSONWebKeySet
}

// NewHTTPStatus returns a StatusSource asking the CA at baseURL
// ("https://ca.example.com:8443", or "http://ca.example.com:8080" for the
// plain listener; a trailing "/v1/status" is accepted). Its answers are
// signed, so plain HTTP is fine for them, but keys must be pinned: the
// JWKS of GET /v1/status/keys fetched once over verified HTTPS
// (FetchStatusKeys) or shipped as a file. client nil means one with
// DefaultHTTPTimeout.
func NewHTTPStatus(baseURL string, client *http.Client, keys jose.JSONWebKeySet) (*HTTPStatus, error) {
	base, err := statusBase(baseURL)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(keys, true); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	return &HTTPStatus{base: base, client: client, keys: keys}, nil
}

// statusBase checks a status base URL and returns it without a trailing
// "/" or "/v1/status".
func statusBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: status URL %q: %v", ErrConfig, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: status URL %q: want http(s)://host[:port][/path]", ErrConfig, raw)
	}
	s := strings.TrimSuffix(u.String(), "/")
	s = strings.TrimSuffix(s, "/v1/status")
	return s, nil
}

// Status implements StatusSource: it fetches and verifies the answer, and
// checks that it is about serial and, when asked, the instant at.
func (h *HTTPStatus) Status(ctx context.Context, serial string, at time.Time) (*status.Answer, error) {
	n, err := ca.ParseSerial(serial)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	serial = ca.SerialHex(n)
	u := h.base + "/v1/status/" + serial
	if !at.IsZero() {
		at = at.UTC().Truncate(time.Second)
		u += "?at=" + url.QueryEscape(at.Format(time.RFC3339))
	}
	body, err := httpGet(ctx, h.client, u)
	if err != nil {
		return nil, err
	}
	st, err := ParseStatus(string(body), h.keys)
	if err != nil {
		return nil, err
	}
	if st.Serial != serial {
		return nil, fmt.Errorf("%w: %w: asked for serial %s, the answer is about %s", ErrUnavailable, ErrBadStatus, serial, st.Serial)
	}
	if !at.IsZero() && !st.At.Equal(at) {
		return nil, fmt.Errorf("%w: %w: asked for the status at %s, the answer is for %s", ErrUnavailable, ErrBadStatus,
			at.Format(time.RFC3339), st.At.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// httpGet GETs u and returns the body of a 200 answer, at most
// MaxStatusBytes. Other answers are ErrUnavailable errors carrying the
// CA's error code and message.
func httpGet(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxStatusBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrUnavailable, u, err)
	}
	if len(body) > MaxStatusBytes {
		return nil, fmt.Errorf("%w: GET %s: the answer is larger than %d bytes", ErrUnavailable, u, MaxStatusBytes)
	}
	if resp.StatusCode != http.StatusOK {
		if d, ok := apierror.Parse(body); ok {
			return nil, fmt.Errorf("%w: GET %s: %s: %s: %s", ErrUnavailable, u, resp.Status, d.Code, d.Message)
		}
		return nil, fmt.Errorf("%w: GET %s: %s", ErrUnavailable, u, resp.Status)
	}
	return body, nil
}

// ParseStatus verifies a compact status JWS with one of keys and returns
// its payload. The protected header's typ must be
// status.MediaType (so a receipt, signed by the same key, is
// not taken for a status), the key the one its kid names (or one without
// a kid), its alg that key's one algorithm (ca.JOSEAlgorithm), and the
// payload a status.Answer with no unknown
// fields. Errors wrap ErrBadStatus and ErrUnavailable.
func ParseStatus(compact string, keys jose.JSONWebKeySet) (*status.Answer, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: "+format, append([]any{ErrUnavailable, ErrBadStatus}, args...)...)
	}
	compact = strings.TrimSpace(compact)
	obj, err := jose.ParseSignedCompact(compact, ca.JOSEAlgorithms())
	if err != nil {
		return nil, bad("%v", err)
	}
	if len(obj.Signatures) != 1 {
		return nil, bad("want one signature")
	}
	hdr := obj.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, status.MediaType) {
		return nil, bad("typ %q is not %s", typ, status.MediaType)
	}
	payload, err := ca.VerifyWithKeySet(obj, keys)
	if err != nil {
		return nil, bad("%v", err)
	}
	var st status.Answer
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, bad("payload: %v", err)
	}
	if dec.More() {
		return nil, bad("payload: trailing data")
	}
	switch st.Status {
	case status.Good, status.Revoked, status.Expired, status.NotYetValid, status.Unknown:
	default:
		return nil, bad("status %q", st.Status)
	}
	if st.Serial == "" || st.At.IsZero() || st.ThisUpdate.IsZero() || st.NextUpdate.IsZero() {
		return nil, bad("payload lacks serial, at, this_update or next_update")
	}
	return &st, nil
}

// FetchStatusKeys GETs the status JWKS from <baseURL>/v1/status/keys,
// which must be HTTPS: keys fetched over plain HTTP prove nothing, as
// anyone on the path could swap them. client must verify the CA's TLS
// certificate (RootCAs: the trust bundle, since the CA's HTTPS
// certificate is issued by its own hierarchy); nil means one with the
// system roots and DefaultHTTPTimeout. Fetch once and pin the result.
func FetchStatusKeys(ctx context.Context, baseURL string, client *http.Client) (jose.JSONWebKeySet, error) {
	base, err := statusBase(baseURL)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	if !strings.HasPrefix(base, "https://") {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: status keys must be fetched over HTTPS, not %s: keys fetched over plain HTTP prove nothing", ErrConfig, baseURL)
	}
	c := &http.Client{Timeout: DefaultHTTPTimeout}
	if client != nil {
		copied := *client
		c = &copied
	}
	// A redirect must not take the keys off HTTPS either.
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" || len(via) >= 10 {
			return fmt.Errorf("refusing a redirect to %s", req.URL.Redacted())
		}
		return nil
	}
	body, err := httpGet(ctx, c, base+"/v1/status/keys")
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return ParseStatusKeys(body)
}

// ParseStatusKeys reads a status JWKS (what GET /v1/status/keys serves)
// and checks that it holds at least one public key workerca signs with.
func ParseStatusKeys(b []byte) (jose.JSONWebKeySet, error) {
	var keys jose.JSONWebKeySet
	if err := json.Unmarshal(b, &keys); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("%w: status keys: %v", ErrConfig, err)
	}
	if err := checkKeys(keys, true); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return keys, nil
}

// query is one question to the StatusSource.
type query struct {
	serial string
	// ask is the instant asked about; zero is now.
	ask time.Time
	// now is the verifier's clock.
	now time.Time
}

// status asks the StatusSource and checks the answer: the serial, the
// instant asked, and that it is not stale.
func (v *Verifier) status(ctx context.Context, q query) (*status.Answer, error) {
	serial, ask, now := q.serial, q.ask, q.now
	st, err := v.cfg.Status.Status(ctx, serial, ask)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: "+format, append([]any{ErrUnavailable, ErrBadStatus}, args...)...)
	}
	switch {
	case st == nil:
		return nil, bad("no answer")
	case st.Serial != serial:
		return nil, bad("asked for serial %s, the answer is about %q", serial, st.Serial)
	case !ask.IsZero() && !st.At.Equal(ask):
		return nil, bad("asked for the status at %s, the answer is for %s", ask.Format(time.RFC3339), st.At.UTC().Format(time.RFC3339))
	case ask.IsZero() && (st.At.Before(now.Add(-MaxClockSkew)) || st.At.After(now.Add(MaxClockSkew))):
		return nil, bad("asked for the status now (%s), the answer is for %s", now.Format(time.RFC3339), st.At.UTC().Format(time.RFC3339))
	case st.NextUpdate.Before(now.Add(-MaxClockSkew)):
		return nil, bad("the answer is stale: next_update %s has passed", st.NextUpdate.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// checkStatus finishes r with the status source: the status at at, and
// for a past instant also the status now (the conservative keyCompromise
// rule of the package documentation).
func (v *Verifier) checkStatus(ctx context.Context, r *Result, when instant) (*Result, error) {
	at := when.at
	q := query{serial: r.Serial, now: when.now}
	if when.past() {
		q.ask = at
	}
	st, err := v.status(ctx, q)
	if err != nil {
		return nil, err
	}
	if st.Status == status.Unknown {
		r.Revocation = RevocationUnknown
		return r.reject(CodeStatusUnknown, "the CA does not know serial %s: not issued by it, or pruned from its history", r.Serial), nil
	}
	if st.RevokedAt != nil || st.Status == status.Revoked {
		return r.revoked(st.RevokedAt, st.Reason, st.InvalidityDate), nil
	}
	if st.Status != status.Good {
		return r.reject(CodeExpired, "the CA says the certificate was %s at %s", st.Status, at.Format(time.RFC3339)), nil
	}
	if !when.past() {
		return r.accept(""), nil
	}
	cur, err := v.status(ctx, query{serial: r.Serial, now: when.now})
	if err != nil {
		return nil, err
	}
	if cur.RevokedAt == nil {
		return r.accept(""), nil
	}
	if cur.Reason == status.KeyCompromise.String() && (cur.InvalidityDate == nil || !cur.InvalidityDate.After(at)) {
		return r.revoked(cur.RevokedAt, cur.Reason, cur.InvalidityDate), nil
	}
	return r.accept(laterRevocation(cur.RevokedAt, cur.Reason, cur.InvalidityDate)), nil
}

// laterRevocation describes a revocation after the instant checked.
func laterRevocation(revokedAt *time.Time, reason string, invalidity *time.Time) string {
	s := fmt.Sprintf("revoked later, at %s (%s)", fmtTime(revokedAt), reason)
	if invalidity != nil {
		s += fmt.Sprintf(", key compromised since %s", fmtTime(invalidity))
	}
	return s + ", after the instant checked"
}
