package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/store"
)

// Renewal refusals.
var (
	// ErrCertificateUnknown means the presented certificate is not in the
	// ledger (or is not a worker certificate).
	ErrCertificateUnknown = errors.New("enroll: certificate not in the ledger")
	// ErrCertificateExpired means the presented certificate has expired.
	ErrCertificateExpired = errors.New("enroll: certificate expired")
	// ErrCertificateRevoked means the presented certificate was revoked.
	ErrCertificateRevoked = errors.New("enroll: certificate revoked")
	// ErrReattestationRequired means the renewal chain has run longer than
	// the pool's max_renewal_chain: the worker must attest again.
	ErrReattestationRequired = errors.New("enroll: renewal chain too long, attest again")
)

// CheckWorker decides whether a verified worker certificate may act as a
// worker now: it must be in the ledger as a worker certificate, unexpired
// and unrevoked. It returns the ledger row.
func (s *Service) CheckWorker(ctx context.Context, cert *x509.Certificate) (*store.Certificate, error) {
	if cert == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrCertificateUnknown)
	}
	serial := ca.SerialHex(cert.SerialNumber)
	row, err := s.cfg.Ledger.Certificate(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: serial %s", ErrCertificateUnknown, serial)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	if err := s.checkWorkerRow(row); err != nil {
		return nil, err
	}
	return row, nil
}

// checkWorkerRow is CheckWorker's judgement of a ledger row, without I/O.
func (s *Service) checkWorkerRow(row *store.Certificate) error {
	serial := row.Serial
	switch {
	case row.Method == MethodServer || row.Pool == "":
		return fmt.Errorf("%w: serial %s is not a worker certificate", ErrCertificateUnknown, serial)
	case row.RevokedAt != nil:
		return fmt.Errorf("%w: serial %s at %s", ErrCertificateRevoked, serial, row.RevokedAt.Format(time.RFC3339))
	case !s.cfg.Clock().Before(row.NotAfter):
		return fmt.Errorf("%w: serial %s at %s", ErrCertificateExpired, serial, row.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// certificates is the part of the ledger renewal needs.
type certificates interface {
	Certificate(ctx context.Context, serial string) (*store.Certificate, error)
}

// RenewRequest is POST /v1/renew.
type RenewRequest struct {
	// Worker is the ledger row of the worker's current certificate, as
	// CheckWorker returned it for the mTLS client certificate. Renew
	// judges it again (expiry, revocation) without reading it again.
	Worker *store.Certificate
	// CSR is the new request; a new key is allowed.
	CSR []byte
	// TPMCertify is TPM2_Certify of the CSR's key by the worker's AK:
	// required for a certificate of method tpm, refused for others.
	TPMCertify *tpmwire.Certify
}

// Renew issues a certificate with the same identity as the current one,
// linked to it by parent serial. The ledger, not the certificate, decides:
// the current certificate must be recorded, unexpired and unrevoked, and
// the chain of renewals since the last attestation must be within the
// pool's MaxRenewalChain.
func (s *Service) Renew(ctx context.Context, req RenewRequest) (*Result, error) {
	row := req.Worker
	if row == nil {
		return nil, fmt.Errorf("%w: no certificate", ErrCertificateUnknown)
	}
	if err := s.checkWorkerRow(row); err != nil {
		return nil, err
	}
	serial := row.Serial
	now := s.cfg.Clock()
	pool, err := s.Pool(row.Pool)
	if err != nil {
		return nil, err
	}
	if pool.MaxRenewalChain > 0 && now.Sub(row.AttestedAt) > pool.MaxRenewalChain {
		return nil, fmt.Errorf("%w: attested at %s, pool %s allows %s", ErrReattestationRequired,
			row.AttestedAt.Format(time.RFC3339), pool.Name(), pool.MaxRenewalChain)
	}
	var evidence any = map[string]string{"renewal_of": serial}
	switch {
	case row.Method == MethodTPM:
		if evidence, err = renewTPM(row, req.CSR, req.TPMCertify); err != nil {
			s.cfg.Logger.WarnContext(ctx, "TPM renewal refused", "serial", serial, "error", err)
			return nil, err
		}
	case req.TPMCertify != nil:
		return nil, fmt.Errorf("%w: tpm_certify is for certificates of method %s; this one is %s", ErrInvalidRequest, MethodTPM, row.Method)
	}
	return s.Issue(ctx, Request{
		CSR: req.CSR,
		Identity: ca.Identity{
			Pool: row.Pool, WorkerID: row.WorkerID, Method: row.Method, EnrollmentID: row.EnrollmentID,
		},
		AttestationSubject: row.AttestationSubject,
		Evidence:           evidence,
		ParentSerial:       serial,
		AttestedAt:         row.AttestedAt,
		Actor:              "worker:" + serial,
	})
}
