package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/artifact/registry"
	"github.com/workerca/workerca/store"
)

type registerRequest struct {
	Signature string     `json:"signature"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// ArtifactRegistration is one registration of an artifact signature, as
// POST /v1/artifacts and GET /v1/artifacts/{sha256} answer it.
type ArtifactRegistration struct {
	// SHA256 is the artifact's digest; Name the name the worker signed.
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
	// Serial, WorkerID, Pool and SPIFFEID describe the signing
	// certificate.
	Serial   string `json:"serial"`
	WorkerID string `json:"worker_id"`
	Pool     string `json:"pool"`
	SPIFFEID string `json:"spiffe_id"`
	// RegisteredAt is the CA's time of registration (the receipt's).
	RegisteredAt time.Time `json:"registered_at"`
	// ExpiresAt ends the registration.
	ExpiresAt time.Time `json:"expires_at"`
	// SignatureSHA256 is the SHA-256 of the compact signature.
	SignatureSHA256 string `json:"signature_sha256"`
	// Signature is the worker's compact JWS.
	Signature string `json:"signature"`
	// Receipt is the CA's compact JWS receipt.
	Receipt string `json:"receipt"`
}

// ArtifactResponse is the answer of GET /v1/artifacts/{sha256}.
type ArtifactResponse struct {
	// SHA256 is the artifact's digest.
	SHA256 string `json:"sha256"`
	// Registrations are oldest first.
	Registrations []ArtifactRegistration `json:"registrations"`
}

func registrationView(a *store.Artifact) ArtifactRegistration {
	return ArtifactRegistration{
		SHA256: a.SHA256, Name: a.Name, Serial: a.Serial, WorkerID: a.WorkerID, Pool: a.Pool, SPIFFEID: a.SPIFFEID,
		RegisteredAt: a.RegisteredAt.UTC(), ExpiresAt: a.ExpiresAt.UTC(), SignatureSHA256: a.SigSHA256,
		Signature: a.Signature, Receipt: a.Receipt,
	}
}

// registerArtifact is POST /v1/artifacts {signature, expires_at} over
// worker mTLS: 201 with the receipt, or 200 with the first registration's
// when the same signature was registered before.
func (s *Server) registerArtifact(c echo.Context) error {
	w, ok := callerWorker(c)
	if !ok {
		return newError(http.StatusUnauthorized, "client_certificate_required", "this route needs the worker's certificate over mTLS")
	}
	var req registerRequest
	if err := decodeJSONLimit(c, &req, MaxBodyBytes); err != nil {
		return err
	}
	if req.Signature == "" || req.ExpiresAt == nil {
		return newError(http.StatusBadRequest, "invalid_request", "signature and expires_at are required")
	}
	r, err := s.cfg.Registry.Register(c.Request().Context(), registry.Request{
		Signature: req.Signature, ExpiresAt: *req.ExpiresAt, Caller: w.cert, Worker: w.row,
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !r.Created {
		status = http.StatusOK
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/artifacts/"+r.Artifact.SHA256)
	return c.JSON(status, registrationView(&r.Artifact))
}

// artifact is GET /v1/artifacts/{sha256}: the kept registrations of an
// artifact, with their signatures and receipts.
func (s *Server) artifact(c echo.Context) error {
	digest := c.Param("sha256")
	rows, err := s.cfg.Registry.Lookup(c.Request().Context(), digest)
	if err != nil {
		return err
	}
	out := ArtifactResponse{SHA256: digest, Registrations: make([]ArtifactRegistration, len(rows))}
	for i := range rows {
		out.Registrations[i] = registrationView(&rows[i])
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}
