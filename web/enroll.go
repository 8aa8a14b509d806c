package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll"
)

type challengeResponse struct {
	Nonce     string    `json:"nonce"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createChallenge is POST /v1/enroll/challenge: a fresh single-use nonce.
// It takes no body.
func (s *Server) createChallenge(c echo.Context) error {
	if c.Request().ContentLength > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "POST /v1/enroll/challenge takes no body")
	}
	ch, err := s.cfg.Enroll.CreateChallenge(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, challengeResponse{Nonce: ch.Nonce, ExpiresAt: ch.ExpiresAt.UTC()})
}

type enrollRequest struct {
	Method   string          `json:"method"`
	CSR      string          `json:"csr"`
	Nonce    string          `json:"nonce"`
	Pool     string          `json:"pool"`
	Evidence json.RawMessage `json:"evidence"`
}

// EnrollResponse is the JSON answer of POST /v1/enroll and POST
// /v1/renew.
type EnrollResponse struct {
	// Certificate is the worker certificate, PEM.
	Certificate string `json:"certificate"`
	// Chain is the certificate followed by the intermediate, PEM.
	Chain string `json:"chain"`
	// SPIFFEID is the certificate's SPIFFE ID.
	SPIFFEID string `json:"spiffe_id"`
	// Serial is the lowercase hex serial.
	Serial string `json:"serial"`
	// NotAfter is the end of the certificate's validity.
	NotAfter time.Time `json:"not_after"`
	// RenewAfter is when the worker should renew (two thirds of the
	// lifetime).
	RenewAfter time.Time `json:"renew_after"`
}

func enrollResponse(res *enroll.Result) EnrollResponse {
	cert := res.Certificate
	return EnrollResponse{
		Certificate: string(ca.EncodeCertificates(cert)),
		Chain:       string(ca.EncodeCertificates(res.Chain...)),
		SPIFFEID:    res.SPIFFEID,
		Serial:      res.Serial,
		NotAfter:    cert.NotAfter.UTC(),
		RenewAfter:  enroll.RenewAfter(cert.NotBefore, cert.NotAfter).UTC(),
	}
}

// enrollJSON is POST /v1/enroll {method, csr, nonce, evidence, pool?}.
func (s *Server) enrollJSON(c echo.Context) error {
	var req enrollRequest
	if err := decodeJSONLimit(c, &req, MaxBodyBytes); err != nil {
		return err
	}
	if req.Method == "" || req.CSR == "" {
		return newError(http.StatusBadRequest, "invalid_request", "method and csr are required")
	}
	res, err := s.cfg.Enroll.Enroll(c.Request().Context(), enroll.EnrollRequest{
		Method: req.Method, CSR: []byte(req.CSR), Nonce: req.Nonce, Evidence: req.Evidence, Pool: req.Pool,
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Workerca-Serial", res.Serial)
	return c.JSON(http.StatusCreated, enrollResponse(res))
}
