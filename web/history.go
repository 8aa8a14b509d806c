package web

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
)

// MaxHistoryPage caps the limit of GET /v1/workers/{id}/certificates.
const MaxHistoryPage = 1000

// HistoryCertificate is one certificate a worker held.
type HistoryCertificate struct {
	// Serial is the certificate's serial (lowercase hex).
	Serial string `json:"serial"`
	// SPIFFEID and Pool are the certificate's identity.
	SPIFFEID string `json:"spiffe_id"`
	Pool     string `json:"pool"`
	// SPKISHA256 is the lowercase hex SHA-256 of the subject public key
	// info; PublicKeyPEM is that public key.
	SPKISHA256   string `json:"spki_sha256"`
	PublicKeyPEM string `json:"public_key_pem"`
	// NotBefore and NotAfter are the validity period.
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// EnrollmentMethod is how the worker proved itself ("token",
	// "aws-iid", "renewal" chains carry their parent's).
	EnrollmentMethod string `json:"enrollment_method"`
	// ParentSerial is the certificate this one renewed, or "".
	ParentSerial string `json:"parent_serial,omitempty"`
	// Status is the status at the instant asked (valid_at, else now),
	// with the revocation in effect then, as GET /v1/status answers it.
	Status         string     `json:"status"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	InvalidityDate *time.Time `json:"invalidity_date,omitempty"`
}

// HistoryResponse is the answer of GET /v1/workers/{id}/certificates.
type HistoryResponse struct {
	// WorkerID is the worker asked about.
	WorkerID string `json:"worker_id"`
	// ValidAt is the instant asked about, if any.
	ValidAt *time.Time `json:"valid_at,omitempty"`
	// Certificates are newest first.
	Certificates []HistoryCertificate `json:"certificates"`
	// NextCursor, when not empty, fetches the next page (?cursor=).
	NextCursor string `json:"next_cursor,omitempty"`
}

// workerCertificates is GET /v1/workers/{id}/certificates[?valid_at=T]
// [&limit=N][&cursor=C]: the certificates the worker held at T, or all
// retained ones, newest first.
func (s *Server) workerCertificates(c echo.Context) error {
	id := c.Param("id")
	if err := ca.CheckWorkerID(id); err != nil {
		return newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("worker id: %v", err))
	}
	now := s.cfg.Clock().UTC()
	q := store.WorkerQuery{WorkerID: id, After: c.QueryParam("cursor")}
	if v := c.QueryParam("valid_at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("valid_at: %q is not an RFC 3339 time", v))
		}
		if t.After(now) {
			return newError(http.StatusBadRequest, "invalid_request", "valid_at is in the future")
		}
		t = t.UTC()
		q.ValidAt = &t
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistoryPage {
			return newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be 1 to %d", MaxHistoryPage))
		}
		q.Limit = n
	}
	rows, next, err := s.cfg.Store.WorkerCertificates(c.Request().Context(), q)
	if err != nil {
		return storeError(err)
	}
	at := now
	if q.ValidAt != nil {
		at = *q.ValidAt
	}
	out := HistoryResponse{WorkerID: id, ValidAt: q.ValidAt, Certificates: make([]HistoryCertificate, 0, len(rows)), NextCursor: next}
	for i := range rows {
		h, err := historyCertificate(&rows[i], at)
		if err != nil {
			return err
		}
		out.Certificates = append(out.Certificates, h)
	}
	return c.JSON(http.StatusOK, out)
}

func historyCertificate(row *store.Certificate, at time.Time) (HistoryCertificate, error) {
	cert, err := x509.ParseCertificate(row.DER)
	if err != nil {
		return HistoryCertificate{}, fmt.Errorf("web: ledger row %s: %w", row.Serial, err)
	}
	st := revocation.StatusAt(row, at)
	return HistoryCertificate{
		Serial: row.Serial, SPIFFEID: row.SPIFFEID, Pool: row.Pool, SPKISHA256: row.SPKISHA256,
		PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: cert.RawSubjectPublicKeyInfo})),
		NotBefore:    row.NotBefore.UTC(), NotAfter: row.NotAfter.UTC(), EnrollmentMethod: row.Method, ParentSerial: row.ParentSerial,
		Status: st.Status, RevokedAt: st.RevokedAt, Reason: st.Reason, InvalidityDate: st.InvalidityDate,
	}, nil
}
