package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/credential"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/store"
)

// Content types of the enrollment endpoints.
const (
	contentPKCS10    = "application/pkcs10"
	contentPEMChain  = "application/pem-certificate-chain"
	contentJSON      = "application/json"
	maxJSONBodyBytes = 16 << 10
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database unreachable", "error", err)
		return newError(http.StatusServiceUnavailable, "not_ready", "the database is unreachable")
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) bundle(c echo.Context) error {
	return c.Blob(http.StatusOK, contentPEMChain, ca.EncodeCertificates(s.cfg.Roots...))
}

func (s *Server) intermediates(c echo.Context) error {
	return c.Blob(http.StatusOK, contentPEMChain, ca.EncodeCertificates(s.cfg.Intermediates...))
}

// readBody reads at most limit bytes of a body whose media type must be
// want.
func readBody(c echo.Context, want string, limit int64) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != want {
		return nil, newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be "+want)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body over %d bytes", limit))
		}
		return nil, newError(http.StatusBadRequest, "invalid_request", "could not read the request body")
	}
	if len(body) == 0 {
		return nil, newError(http.StatusBadRequest, "invalid_request", "empty request body")
	}
	return body, nil
}

// decodeJSON reads a JSON body strictly: unknown fields and trailing data
// are errors.
func decodeJSON(c echo.Context, v any) error {
	return decodeJSONLimit(c, v, maxJSONBodyBytes)
}

// decodeJSONLimit is decodeJSON with a body cap of limit bytes.
func decodeJSONLimit(c echo.Context, v any, limit int64) error {
	body, err := readBody(c, contentJSON, limit)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(http.StatusBadRequest, "invalid_json", "request body: "+err.Error())
	}
	if dec.More() {
		return newError(http.StatusBadRequest, "invalid_json", "request body: data after the JSON object")
	}
	return nil
}

// parseDuration reads DESIGN.md's duration strings ("90m"); empty is 0.
func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("%s: %q is not a duration like \"90m\"", field, s))
	}
	return d, nil
}

// enrollToken is POST /v1/enroll/token: the shell-friendly token
// enrollment. Body: a PEM or DER CSR; answer: the PEM chain.
func (s *Server) enrollToken(c echo.Context) error {
	tok := bearer(c)
	if tok == "" {
		return newError(http.StatusUnauthorized, "token_missing", "an enrollment token is required: Authorization: Bearer wct_...")
	}
	csr, err := readBody(c, contentPKCS10, MaxBodyBytes)
	if err != nil {
		return err
	}
	res, err := s.cfg.Enroll.EnrollToken(c.Request().Context(), tok, csr)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Workerca-Serial", res.Serial)
	return c.Blob(http.StatusCreated, contentPEMChain, ca.EncodeCertificates(res.Chain...))
}

type tokenRequest struct {
	Pool     string `json:"pool"`
	WorkerID string `json:"worker_id"`
	TTL      string `json:"ttl"`
	// Count, when present (and not null), asks for the batch form: see
	// createTokens. It is read raw so that a count that is not a whole
	// number gets its own error code.
	Count json.RawMessage `json:"count"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	Pool      string    `json:"pool"`
	WorkerID  string    `json:"worker_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) createToken(c echo.Context) error {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ttl, err := parseDuration("ttl", req.TTL)
	if err != nil {
		return err
	}
	if req.Count != nil && string(req.Count) != "null" {
		return s.createTokens(c, req, ttl)
	}
	tok, err := s.cfg.Enroll.CreateToken(c.Request().Context(), enroll.TokenRequest{Pool: req.Pool, WorkerID: req.WorkerID, TTL: ttl, CreatedBy: actor(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tokenResponse{Token: tok.Value, ID: tok.ID, Pool: req.Pool, WorkerID: req.WorkerID, ExpiresAt: tok.ExpiresAt.UTC()})
}

type apiKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	TTL    string   `json:"ttl"`
}

type apiKeyView struct {
	ID         string     `json:"id"`
	Key        string     `json:"key"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func viewAPIKey(k *store.APIKey) apiKeyView {
	return apiKeyView{
		ID: k.ID, Key: credential.Masked(credential.APIKey, k.ID), Name: k.Name, Scopes: strings.Fields(k.Scopes),
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utc(k.ExpiresAt), RevokedAt: utc(k.RevokedAt), LastUsedAt: utc(k.LastUsedAt),
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *Server) createAPIKey(c echo.Context) error {
	var req apiKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ttl, err := parseDuration("ttl", req.TTL)
	if err != nil {
		return err
	}
	scopes := make([]Scope, len(req.Scopes))
	for i, sc := range req.Scopes {
		scopes[i] = Scope(sc)
	}
	k, err := CreateAPIKey(c.Request().Context(), s.cfg.Store, APIKeyRequest{
		Name: req.Name, Scopes: scopes, TTL: ttl, CreatedBy: actor(c), Now: s.cfg.Clock(), Rand: s.cfg.Rand,
	})
	if err != nil {
		return err
	}
	v := viewAPIKey(k.Row)
	v.Key = k.Key // the only time the secret is shown
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) listAPIKeys(c echo.Context) error {
	keys, err := s.cfg.Store.ListAPIKeys(c.Request().Context())
	if err != nil {
		return storeError(err)
	}
	out := make([]apiKeyView, 0, len(keys))
	for i := range keys {
		out = append(out, viewAPIKey(&keys[i]))
	}
	return c.JSON(http.StatusOK, map[string]any{"api_keys": out})
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	id := c.Param("id")
	if len(id) != 16 || !isHex(id) {
		return newError(http.StatusNotFound, "not_found", "no such API key")
	}
	ctx := c.Request().Context()
	now := s.cfg.Clock().UTC()
	if err := s.cfg.Store.RevokeAPIKey(ctx, id, now, store.AuditEvent{At: now, Actor: actor(c), Action: "apikey.revoked", Target: id}); err != nil {
		return storeError(err)
	}
	k, err := s.cfg.Store.APIKey(ctx, id)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(http.StatusOK, viewAPIKey(k))
}

// certificateView is a ledger row as the API shows it.
type certificateView struct {
	Serial             string          `json:"serial"`
	WorkerID           string          `json:"worker_id"`
	Pool               string          `json:"pool"`
	SPIFFEID           string          `json:"spiffe_id"`
	SPKISHA256         string          `json:"spki_sha256"`
	NotBefore          time.Time       `json:"not_before"`
	NotAfter           time.Time       `json:"not_after"`
	IssuedAt           time.Time       `json:"issued_at"`
	Method             string          `json:"method"`
	EnrollmentID       string          `json:"enrollment_id"`
	AttestationSubject string          `json:"attestation_subject"`
	Evidence           json.RawMessage `json:"evidence"`
	ParentSerial       string          `json:"parent_serial,omitempty"`
	RevokedAt          *time.Time      `json:"revoked_at,omitempty"`
	RevocationReason   *int            `json:"revocation_reason,omitempty"`
	RetainUntil        time.Time       `json:"retain_until"`
	CertificatePEM     string          `json:"certificate_pem"`
}

// ParseSerial normalizes a serial from a path: hex, either case, at most
// 20 octets (RFC 5280 §4.1.2.2), returned lowercase.
func ParseSerial(s string) (string, error) {
	n, err := ca.ParseSerial(s)
	if err != nil {
		return "", newError(http.StatusBadRequest, "invalid_serial", "serial must be the hex of the serial's bytes, as openssl x509 -serial prints it")
	}
	return ca.SerialHex(n), nil
}

func (s *Server) getCertificate(c echo.Context) error {
	serial, err := ParseSerial(c.Param("serial"))
	if err != nil {
		return err
	}
	row, err := s.cfg.Store.Certificate(c.Request().Context(), serial)
	if err != nil {
		return storeError(err)
	}
	ev := json.RawMessage(row.Evidence)
	if !json.Valid(ev) {
		ev = json.RawMessage("null")
	}
	return c.JSON(http.StatusOK, certificateView{
		Serial: row.Serial, WorkerID: row.WorkerID, Pool: row.Pool, SPIFFEID: row.SPIFFEID, SPKISHA256: row.SPKISHA256,
		NotBefore: row.NotBefore.UTC(), NotAfter: row.NotAfter.UTC(), IssuedAt: row.IssuedAt.UTC(),
		Method: row.Method, EnrollmentID: row.EnrollmentID, AttestationSubject: row.AttestationSubject,
		Evidence: ev, ParentSerial: row.ParentSerial, RevokedAt: utc(row.RevokedAt), RevocationReason: row.RevocationReason,
		RetainUntil: row.RetainUntil.UTC(), CertificatePEM: string(pemCert(row.DER)),
	})
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
