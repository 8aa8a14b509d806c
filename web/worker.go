package web

import (
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/store"
)

const ctxWorker = "workerca.worker"

// verifyClientCert verifies the TLS client certificate chain, if any, to
// our roots at the server's clock, for clientAuth. It returns nil, nil
// when the client sent none.
func (s *Server) verifyClientCert(c echo.Context) (*x509.Certificate, error) {
	st := c.Request().TLS
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil, nil
	}
	leaf := st.PeerCertificates[0]
	now := s.cfg.Clock()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return leaf, newError(http.StatusUnauthorized, "certificate_expired", "the client certificate is outside its validity period")
	}
	inter := s.interPool
	if len(st.PeerCertificates) > 1 {
		inter = s.interPool.Clone()
		for _, ic := range st.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: s.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return leaf, newError(http.StatusUnauthorized, "certificate_untrusted", "the client certificate does not chain to this CA as a client certificate")
	}
	return leaf, nil
}

// requireWorker admits a worker certificate: verified to our roots over
// mTLS, then checked against the ledger (recorded, unexpired, unrevoked).
// Operator API keys are refused here: a worker route acts as a worker.
func (s *Server) requireWorker(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if strings.HasPrefix(bearer(c), "wca_") {
			return newError(http.StatusForbidden, "api_key_not_allowed", "worker routes take a worker certificate over mTLS, not an API key")
		}
		cert, err := s.verifyClientCert(c)
		if err != nil {
			return err
		}
		if cert == nil {
			return newError(http.StatusUnauthorized, "client_certificate_required", "this route needs the worker's certificate over mTLS")
		}
		row, err := s.cfg.Enroll.CheckWorker(c.Request().Context(), cert)
		if err != nil {
			return err
		}
		c.Set(ctxWorker, workerCaller{cert: cert, row: row})
		return next(c)
	}
}

// requireReadOrSelf admits an operator key with scope read, or a worker
// certificate whose worker is the one the route's :id names. A request
// with a verified worker certificate is judged as that worker only.
func (s *Server) requireReadOrSelf(next echo.HandlerFunc) echo.HandlerFunc {
	asWorker := s.requireWorker(func(c echo.Context) error {
		w, ok := callerWorker(c)
		if !ok || w.row.WorkerID != c.Param("id") {
			return newError(http.StatusForbidden, "not_own_worker", "a worker may read only its own history")
		}
		return next(c)
	})
	asOperator := s.requireAPIKey(ScopeRead)(next)
	return func(c echo.Context) error {
		if st := c.Request().TLS; st != nil && len(st.PeerCertificates) > 0 {
			return asWorker(c)
		}
		return asOperator(c)
	}
}

// refuseWorker keeps worker certificates off operator routes: a request
// presenting a certificate of ours is refused whatever else it carries.
func (s *Server) refuseWorker(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if cert, err := s.verifyClientCert(c); cert != nil && err == nil {
			return newError(http.StatusForbidden, "worker_not_allowed", "a worker certificate cannot use operator routes")
		}
		return next(c)
	}
}

type workerCaller struct {
	cert *x509.Certificate
	row  *store.Certificate
}

func callerWorker(c echo.Context) (workerCaller, bool) {
	w, ok := c.Get(ctxWorker).(workerCaller)
	return w, ok
}

type renewRequest struct {
	CSR string `json:"csr"`
	// TPMCertify is required from workers enrolled with method tpm.
	TPMCertify *tpmwire.Certify `json:"tpm_certify,omitempty"`
}

// renew is POST /v1/renew {csr} over mTLS with the current certificate.
func (s *Server) renew(c echo.Context) error {
	w, ok := callerWorker(c)
	if !ok {
		return newError(http.StatusUnauthorized, "client_certificate_required", "this route needs the worker's certificate over mTLS")
	}
	if err := s.perWorkerRenewal(c, w.row.Pool, w.row.WorkerID); err != nil {
		return err
	}
	var req renewRequest
	if err := decodeJSONLimit(c, &req, MaxBodyBytes); err != nil {
		return err
	}
	if req.CSR == "" {
		return newError(http.StatusBadRequest, "invalid_request", "csr is required")
	}
	res, err := s.cfg.Enroll.Renew(c.Request().Context(), enroll.RenewRequest{Worker: w.row, CSR: []byte(req.CSR), TPMCertify: req.TPMCertify})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Workerca-Serial", res.Serial)
	return c.JSON(http.StatusCreated, enrollResponse(res))
}
