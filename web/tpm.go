package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/store"
)

// maxTPMStartBytes caps POST /v1/enroll/tpm/start: an EK certificate with
// intermediates, the AK's four structures and the certification, base64,
// fit well under it.
const maxTPMStartBytes = 64 << 10

// tpmStart is POST /v1/enroll/tpm/start: the first round of method tpm.
func (s *Server) tpmStart(c echo.Context) error {
	var req tpmwire.StartRequest
	if err := decodeJSONLimit(c, &req, maxTPMStartBytes); err != nil {
		return err
	}
	res, err := s.cfg.Enroll.StartTPM(c.Request().Context(), req)
	if err != nil {
		return err
	}
	res.ExpiresAt = res.ExpiresAt.UTC()
	return c.JSON(http.StatusOK, res)
}

// tpmFinish is POST /v1/enroll/tpm/finish: the second round; it answers
// like POST /v1/enroll.
func (s *Server) tpmFinish(c echo.Context) error {
	var req tpmwire.FinishRequest
	if err := decodeJSONLimit(c, &req, 4<<10); err != nil {
		return err
	}
	res, err := s.cfg.Enroll.FinishTPM(c.Request().Context(), req)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Workerca-Serial", res.Serial)
	return c.JSON(http.StatusCreated, enrollResponse(res))
}

type tpmEKRequest struct {
	EKSHA256 string `json:"ek_sha256"`
	Pool     string `json:"pool"`
	WorkerID string `json:"worker_id"`
}

type tpmEKView struct {
	EKSHA256 string `json:"ek_sha256"`
	Pool     string `json:"pool"`
	// WorkerID is the registered name, else the one derived from the EK
	// hash.
	WorkerID  string    `json:"worker_id"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

func tpmEKViewOf(r *store.TPMEK) tpmEKView {
	return tpmEKView{EKSHA256: r.EKSHA256, Pool: r.Pool, WorkerID: enroll.RegisteredWorkerID(r), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC()}
}

// registerTPMEK is POST /v1/admin/tpm/eks {ek_sha256, pool, worker_id?}.
func (s *Server) registerTPMEK(c echo.Context) error {
	var req tpmEKRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.EKSHA256 == "" || req.Pool == "" {
		return newError(http.StatusBadRequest, "invalid_request", "ek_sha256 and pool are required")
	}
	row, err := s.cfg.Enroll.RegisterTPMEK(c.Request().Context(), req.EKSHA256, req.Pool, req.WorkerID, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, tpmEKViewOf(row))
}

// listTPMEKs is GET /v1/admin/tpm/eks[?pool=P].
func (s *Server) listTPMEKs(c echo.Context) error {
	rows, err := s.cfg.Enroll.TPMEKs(c.Request().Context(), c.QueryParam("pool"))
	if err != nil {
		return err
	}
	out := make([]tpmEKView, 0, len(rows))
	for i := range rows {
		out = append(out, tpmEKViewOf(&rows[i]))
	}
	return c.JSON(http.StatusOK, map[string]any{"eks": out})
}

// unregisterTPMEK is DELETE /v1/admin/tpm/eks/:hash.
func (s *Server) unregisterTPMEK(c echo.Context) error {
	if err := s.cfg.Enroll.UnregisterTPMEK(c.Request().Context(), c.Param("hash"), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
