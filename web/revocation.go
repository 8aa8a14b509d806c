package web

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/revocation"
)

// MaxOCSPRequestBytes caps an OCSP request, POSTed or in a GET path
// (2 KiB; a request for one certificate is about 100 bytes).
const MaxOCSPRequestBytes = 2 << 10

// Media types of the revocation routes.
const (
	contentCRL          = "application/pkix-crl"
	contentOCSPRequest  = "application/ocsp-request"
	contentOCSPResponse = "application/ocsp-response"
	contentPKIXCert     = "application/pkix-cert"
	contentJOSE         = "application/jose"
	contentJWKS         = "application/jwk-set+json"
)

// crlMaxAge bounds how long HTTP caches may keep a CRL: a revocation
// rebuilds the shard at once, so caches should ask again soon.
const crlMaxAge = time.Minute

type revokeRequest struct {
	Serial             string     `json:"serial"`
	WorkerID           string     `json:"worker_id"`
	Pool               string     `json:"pool"`
	AttestationSubject string     `json:"attestation_subject"`
	Reason             string     `json:"reason"`
	InvalidityDate     *time.Time `json:"invalidity_date"`
}

// RevokeResponse is the answer of POST /v1/admin/revocations and
// POST /v1/revoke.
type RevokeResponse struct {
	// Revoked are the serials this request revoked.
	Revoked []string `json:"revoked"`
	// AlreadyRevoked are matched serials revoked before; their first
	// revocation stands.
	AlreadyRevoked []string `json:"already_revoked"`
}

// revoke is POST /v1/admin/revocations.
func (s *Server) revoke(c echo.Context) error {
	var req revokeRequest
	if err := decodeJSONLimit(c, &req, MaxBodyBytes); err != nil {
		return err
	}
	reason, err := revocation.ParseReason(req.Reason)
	if err != nil {
		return err
	}
	res, err := s.cfg.Revocation.Revoke(c.Request().Context(), revocation.Request{
		Serial: req.Serial, WorkerID: req.WorkerID, Pool: req.Pool, AttestationSubject: req.AttestationSubject,
		Reason: reason, InvalidityDate: req.InvalidityDate, Actor: actor(c),
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RevokeResponse{Revoked: res.Revoked, AlreadyRevoked: res.AlreadyRevoked})
}

type revokeOwnRequest struct {
	Reason string `json:"reason"`
}

// revokeOwn is POST /v1/revoke {reason} over mTLS: a worker revokes the
// certificate it presents.
func (s *Server) revokeOwn(c echo.Context) error {
	w, ok := callerWorker(c)
	if !ok {
		return newError(http.StatusUnauthorized, "client_certificate_required", "this route needs the worker's certificate over mTLS")
	}
	var req revokeOwnRequest
	if err := decodeJSONLimit(c, &req, MaxBodyBytes); err != nil {
		return err
	}
	reason, err := revocation.ParseReason(req.Reason)
	if err != nil {
		return err
	}
	res, err := s.cfg.Revocation.RevokeOwn(c.Request().Context(), w.row.Serial, reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, RevokeResponse{Revoked: res.Revoked, AlreadyRevoked: res.AlreadyRevoked})
}

// crl is GET /crl/:file, file "<shard>.crl".
func (s *Server) crl(c echo.Context) error {
	name, ok := strings.CutSuffix(c.Param("file"), ".crl")
	shard, err := strconv.Atoi(name)
	if !ok || err != nil || shard < 0 || strconv.Itoa(shard) != name {
		return newError(http.StatusNotFound, "not_found", "no such CRL; CRLs are /crl/<shard>.crl")
	}
	crl, err := s.cfg.Revocation.CRL(shard)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("ETag", crl.ETag)
	h.Set("Last-Modified", crl.ThisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Expires", crl.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform, must-revalidate", maxAge(s.cfg.Clock(), crl.NextUpdate, crlMaxAge)))
	if notModified(c, crl.ETag, crl.ThisUpdate) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, contentCRL, crl.DER)
}

// maxAge is the seconds until next, at most limit and at least 0.
func maxAge(now, next time.Time, limit time.Duration) int {
	d := min(next.Sub(now), limit)
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}

// notModified answers conditional GETs: If-None-Match wins over
// If-Modified-Since (RFC 9110 §13.2.2).
func notModified(c echo.Context, etag string, modified time.Time) bool {
	r := c.Request()
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !modified.Truncate(time.Second).After(t) {
			return true
		}
	}
	return false
}

// ocspGet is GET /ocsp/<url-encoded base64 DER request> (RFC 6960
// Appendix A.1). It reads URL.Path, which net/url has already unescaped
// in full: "+" and "/" of the base64 arrive as sent, or from %2B and %2F
// (routing, which goes by the raw path, leaves them be). One extra "/"
// after the prefix, which clients that join a responder URL ending in
// "/" send ("/ocsp//MEIw..."), is dropped: a DER request's base64 starts
// with "M", never with "/".
func (s *Server) ocspGet(c echo.Context) error {
	b64, ok := strings.CutPrefix(c.Request().URL.Path, "/ocsp/")
	if !ok || len(b64) > 2*MaxOCSPRequestBytes {
		return s.ocspAnswer(c, nil)
	}
	b64 = strings.TrimPrefix(b64, "/")
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	}
	if err != nil || len(der) > MaxOCSPRequestBytes {
		return s.ocspAnswer(c, nil)
	}
	return s.ocspAnswer(c, der)
}

// ocspPost is POST /ocsp with an application/ocsp-request body.
func (s *Server) ocspPost(c echo.Context) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != contentOCSPRequest {
		return s.ocspAnswer(c, nil)
	}
	der, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxOCSPRequestBytes+1))
	if err != nil || len(der) > MaxOCSPRequestBytes {
		return s.ocspAnswer(c, nil)
	}
	return s.ocspAnswer(c, der)
}

// ocspAnswer writes the OCSP answer for der (nil: malformedRequest) with
// RFC 5019 §6 caching headers when it is cacheable. OCSP errors are
// OCSP's own (status 200, an unsuccessful OCSPResponse), not JSON.
func (s *Server) ocspAnswer(c echo.Context, der []byte) error {
	var a *revocation.OCSPAnswer
	if der == nil {
		a = s.cfg.Revocation.MalformedOCSP()
	} else {
		a = s.cfg.Revocation.OCSP(c.Request().Context(), der)
	}
	// The header names below are in canonical form already: assigning
	// them skips Header.Set's canonicalization on this hot path.
	h := c.Response().Header()
	if !a.Cacheable {
		h["Cache-Control"] = []string{"no-store"}
		return c.Blob(http.StatusOK, contentOCSPResponse, a.DER)
	}
	now := s.cfg.Clock()
	h["Etag"] = []string{a.ETag}
	h["Last-Modified"] = []string{a.LastModified}
	h["Expires"] = []string{a.Expires}
	h["Cache-Control"] = []string{"max-age=" + strconv.Itoa(maxAge(now, a.NextUpdate, a.NextUpdate.Sub(a.ThisUpdate))) + ", public, no-transform, must-revalidate"}
	if c.Request().Method == http.MethodGet && notModified(c, a.ETag, a.ThisUpdate) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, contentOCSPResponse, a.DER)
}

// status is GET /v1/status/:serial[?at=RFC3339]: a compact JWS.
func (s *Server) status(c echo.Context) error {
	var at *time.Time
	if v := c.QueryParam("at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("at: %q is not an RFC 3339 time", v))
		}
		at = &t
	}
	jws, _, err := s.cfg.Revocation.Status(c.Request().Context(), c.Param("serial"), at)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, contentJOSE, []byte(jws))
}

// statusKeys is GET /v1/status/keys: the JWKS of the status key.
func (s *Server) statusKeys(c echo.Context) error {
	b, err := json.Marshal(s.cfg.Revocation.StatusKeys())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, contentJWKS, b)
}

// intermediateDER is GET /v1/intermediate.crt: the signing intermediate
// as DER, the AIA caIssuers target (RFC 5280 §4.2.2.1).
func (s *Server) intermediateDER(c echo.Context) error {
	return c.Blob(http.StatusOK, contentPKIXCert, s.cfg.Intermediates[0].Raw)
}
