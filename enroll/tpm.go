package enroll

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/store"
)

// MethodTPM is the two-round TPM 2.0 method (POST /v1/enroll/tpm/start
// and /finish).
const MethodTPM = "tpm"

// EK policies of a TPM pool.
const (
	// TPMEKAny admits an EK whose certificate chains to a configured
	// manufacturer root, or one an operator registered to the pool
	// (default).
	TPMEKAny = "any"
	// TPMEKCertificate admits only EKs whose certificate chains to a
	// manufacturer root; the pool takes no registrations.
	TPMEKCertificate = "certificate"
	// TPMEKRegistered admits only EKs an operator registered to the pool.
	TPMEKRegistered = "registered"
)

// Errors of method tpm.
var (
	// ErrEKUntrusted means the EK certificate does not chain to a
	// configured TPM manufacturer root.
	ErrEKUntrusted = errors.New("enroll: TPM EK certificate untrusted")
	// ErrEKNotRegistered means the EK has no certificate and no operator
	// registered its hash (or the pool admits registered EKs only).
	ErrEKNotRegistered = errors.New("enroll: TPM EK not registered")
	// ErrSessionInvalid means the session was never issued or was pruned.
	ErrSessionInvalid = errors.New("enroll: TPM session invalid")
	// ErrSessionExpired means the session's five minutes have passed.
	ErrSessionExpired = errors.New("enroll: TPM session expired")
	// ErrSessionUsed means the session was already finished, or burned
	// by a wrong secret.
	ErrSessionUsed = errors.New("enroll: TPM session already used")
	// ErrActivationFailed means the secret is not the activated
	// credential: the AK and the EK are not in one TPM.
	ErrActivationFailed = errors.New("enroll: TPM credential activation failed")
	// ErrTPMEKExists means `workerca tpm register` found the EK
	// registered already.
	ErrTPMEKExists = errors.New("enroll: TPM EK already registered")
	// ErrTPMEKUnknown means no registration has that hash (unregister).
	ErrTPMEKUnknown = errors.New("enroll: no such TPM EK registration")
)

// TPMPool is one pool's tpm policy.
type TPMPool struct {
	// Pool names the pool.
	Pool string
	// EK is TPMEKAny ("" means it), TPMEKCertificate or TPMEKRegistered.
	EK string
}

func (p TPMPool) admits(registered bool) bool {
	switch p.EK {
	case TPMEKCertificate:
		return !registered
	case TPMEKRegistered:
		return registered
	}
	return true
}

// TPMConfig wires method tpm.
type TPMConfig struct {
	// Roots are the TPM manufacturer roots EK certificates must chain to;
	// nil admits registered EKs only. None ship with workerca.
	Roots *tpmattest.EKRoots
	// Pools are the pools accepting method tpm. At least one.
	Pools []TPMPool
}

func (c *TPMConfig) check() error {
	if len(c.Pools) == 0 {
		return errors.New("enroll: tpm: at least one pool is required")
	}
	for _, p := range c.Pools {
		switch p.EK {
		case "", TPMEKAny, TPMEKCertificate, TPMEKRegistered:
		default:
			return fmt.Errorf("enroll: tpm: pool %s: ek %q is not %q, %q or %q", p.Pool, p.EK, TPMEKAny, TPMEKCertificate, TPMEKRegistered)
		}
		if p.EK == TPMEKCertificate && c.Roots == nil {
			return fmt.Errorf("enroll: tpm: pool %s admits EK certificates only, but no manufacturer roots are configured", p.Pool)
		}
	}
	return nil
}

// tpmLedger is the part of the ledger method tpm needs.
type tpmLedger interface {
	TPMEK(ctx context.Context, hash string) (*store.TPMEK, error)
	RegisterTPMEK(ctx context.Context, ek *store.TPMEK, audit store.AuditEvent) error
	UnregisterTPMEK(ctx context.Context, hash string, audit store.AuditEvent) error
	TPMEKs(ctx context.Context, pool string) ([]store.TPMEK, error)
	CreateTPMSession(ctx context.Context, s *store.TPMSession) error
	TPMSession(ctx context.Context, hash string) (*store.TPMSession, error)
	BurnChallenge(ctx context.Context, hash string, now time.Time) (bool, error)
}

// TPMWorkerID is the worker ID of a TPM whose registration names none:
// "ek-" and the first 32 hex digits (128 bits) of the SHA-256 of the EK
// public key's PKIX DER.
func TPMWorkerID(ekSHA256 string) string {
	return "ek-" + ekSHA256[:32]
}

// RegisteredWorkerID is the worker ID of a registered EK: the one its
// registration names, else TPMWorkerID.
func RegisteredWorkerID(r *store.TPMEK) string {
	if r.WorkerID != "" {
		return r.WorkerID
	}
	return TPMWorkerID(r.EKSHA256)
}

// validEKHash reports whether s is 64 lowercase hex digits.
func validEKHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// tpmEK is the EK of a first round, as far as it was checked.
type tpmEK struct {
	hash       string
	pub        any
	cert       *tpmattest.EKCertificate
	registered *store.TPMEK
}

// StartTPM runs the first round: it checks the EK (manufacturer chain or
// operator registration), the AK, and TPM2_Certify of the CSR's key by
// the AK, then answers a credential only the TPM holding both the EK and
// the AK can activate, and a session to finish with.
func (s *Service) StartTPM(ctx context.Context, req tpmwire.StartRequest) (*tpmwire.StartResponse, error) {
	start := s.cfg.Clock()
	res, pool, err := s.startTPM(ctx, req)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "TPM attestation refused", "pool", orUnknown(pool), "error", err)
		s.observe(orUnknown(pool), MethodTPM, err, start)
	}
	return res, err
}

func (s *Service) startTPM(ctx context.Context, req tpmwire.StartRequest) (*tpmwire.StartResponse, string, error) {
	if s.cfg.TPM == nil {
		return nil, req.Pool, fmt.Errorf("%w: method %s is not configured on this CA", ErrUnknownMethod, MethodTPM)
	}
	if req.Pool != "" {
		if _, err := s.Pool(req.Pool); err != nil {
			return nil, req.Pool, err
		}
	}
	if req.CSR == "" {
		return nil, req.Pool, fmt.Errorf("%w: csr is required", ErrInvalidRequest)
	}
	csr, err := ParseCSR([]byte(req.CSR))
	if err != nil {
		return nil, req.Pool, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, req.Pool, fmt.Errorf("%w: %v", ca.ErrBadCSR, err)
	}
	ek, err := s.tpmEK(ctx, req.EK)
	if err != nil {
		return nil, req.Pool, err
	}
	pool, workerID, err := s.tpmIdentity(ek, req.Pool)
	if err != nil {
		return nil, req.Pool, err
	}
	ak, err := tpmattest.CheckAK(req.AK)
	if err != nil {
		return nil, pool, tpmError(err)
	}
	keyName, err := ak.CheckCertify(req.Certify, csr.PublicKey)
	if err != nil {
		return nil, pool, tpmError(err)
	}
	secret, cred, err := ak.MakeCredential(ek.pub, s.cfg.Rand)
	if err != nil {
		return nil, pool, tpmError(err)
	}
	handle, err := sessionHandle(s.cfg.Rand)
	if err != nil {
		return nil, pool, err
	}
	evidence := map[string]any{"ek_sha256": ek.hash, "ak_name": ak.Name, "key_name": keyName,
		"ak_public": base64.StdEncoding.EncodeToString(req.AK.Public)}
	if ek.registered != nil {
		evidence["ek_registered_by"] = ek.registered.CreatedBy
	}
	if ek.cert != nil {
		evidence["ek_issuer"] = ek.cert.Cert.Issuer.String()
		evidence["ek_serial"] = ek.cert.Cert.SerialNumber.Text(16)
		if ek.cert.Manufacturer != "" {
			evidence["tpm_manufacturer"], evidence["tpm_model"], evidence["tpm_version"] = ek.cert.Manufacturer, ek.cert.Model, ek.cert.Version
		}
	}
	evJSON, err := json.Marshal(evidence)
	if err != nil {
		return nil, pool, fmt.Errorf("enroll: tpm: encode evidence: %w", err)
	}
	now := s.cfg.Clock().UTC()
	sum := sha256.Sum256(secret)
	sess := &store.TPMSession{
		SessionHash: hashNonce(handle), SecretHash: hex.EncodeToString(sum[:]), Pool: pool, WorkerID: workerID,
		EKSHA256: ek.hash, AKName: ak.Name, Evidence: string(evJSON), CSR: csr.Raw,
		CreatedAt: now, ExpiresAt: now.Add(tpmwire.SessionTTL),
	}
	if err := s.cfg.Ledger.CreateTPMSession(ctx, sess); err != nil {
		return nil, pool, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	s.cfg.Logger.InfoContext(ctx, "TPM enrollment started", "pool", pool, "worker_id", workerID, "ek_sha256", ek.hash, "ak_name", ak.Name)
	return &tpmwire.StartResponse{Session: handle, ExpiresAt: sess.ExpiresAt, Credential: cred}, pool, nil
}

// tpmEK reads the EK and finds its registration; an EK without one must
// have a certificate that chains to a manufacturer root.
func (s *Service) tpmEK(ctx context.Context, in tpmwire.EK) (*tpmEK, error) {
	out := &tpmEK{}
	switch {
	case len(in.Certificate) > 0 && len(in.Public) > 0:
		return nil, fmt.Errorf("%w: ek: give its certificate or its public key, not both", ErrEvidenceMalformed)
	case len(in.Certificate) > 0:
		c, err := tpmattest.ParseEKCertificate(in.Certificate)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrEvidenceMalformed, err)
		}
		out.cert, out.pub = c, c.Cert.PublicKey
	case len(in.Public) > 0:
		if len(in.Public) > tpmattest.MaxStructure {
			return nil, fmt.Errorf("%w: ek public key over %d bytes", ErrEvidenceMalformed, tpmattest.MaxStructure)
		}
		pub, err := x509.ParsePKIXPublicKey(in.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: ek public key: %v", ErrEvidenceMalformed, err)
		}
		out.pub = pub
	default:
		return nil, fmt.Errorf("%w: ek: its certificate or its public key is required", ErrEvidenceMalformed)
	}
	hash, err := tpmwire.EKSHA256(out.pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEvidenceMalformed, err)
	}
	out.hash = hash
	reg, err := s.cfg.Ledger.TPMEK(ctx, hash)
	switch {
	case err == nil:
		out.registered = reg
		return out, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	case out.cert == nil:
		return nil, fmt.Errorf("%w: EK sha256 %s has no certificate and no operator registered it (workerca tpm register)", ErrEKNotRegistered, hash)
	case s.cfg.TPM.Roots == nil:
		return nil, fmt.Errorf("%w: no TPM manufacturer roots are configured and EK sha256 %s is not registered", ErrEKUntrusted, hash)
	}
	var extra []*x509.Certificate
	for i, der := range in.Intermediates {
		if i >= 4 {
			return nil, fmt.Errorf("%w: ek: at most 4 intermediates", ErrEvidenceMalformed)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: ek intermediate %d: %v", ErrEvidenceMalformed, i, err)
		}
		extra = append(extra, c)
	}
	if _, err := s.cfg.TPM.Roots.Verify(out.cert, extra, s.cfg.Clock()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEKUntrusted, err)
	}
	return out, nil
}

// tpmIdentity picks the pool and worker ID: a registration's, else the
// asked pool (or the one pool admitting certified EKs) and the derived ID.
func (s *Service) tpmIdentity(ek *tpmEK, asked string) (pool, worker string, err error) {
	if r := ek.registered; r != nil {
		if asked != "" && asked != r.Pool {
			return "", "", fmt.Errorf("%w: EK sha256 %s is registered to pool %s, not %s", ErrAttestationNotAllowed, ek.hash, r.Pool, asked)
		}
		p, ok := s.tpmPool(r.Pool)
		if !ok || !p.admits(true) {
			return "", "", fmt.Errorf("%w: pool %s does not admit registered TPM EKs", ErrAttestationNotAllowed, r.Pool)
		}
		return r.Pool, RegisteredWorkerID(r), nil
	}
	var admitting []TPMPool
	for _, p := range s.cfg.TPM.Pools {
		if p.admits(false) && (asked == "" || p.Pool == asked) {
			admitting = append(admitting, p)
		}
	}
	switch {
	case len(admitting) == 0 && asked != "":
		if p, ok := s.tpmPool(asked); ok && p.EK == TPMEKRegistered {
			return "", "", fmt.Errorf("%w: pool %s admits registered EKs only; EK sha256 %s is not registered", ErrEKNotRegistered, asked, ek.hash)
		}
		return "", "", fmt.Errorf("%w: pool %s does not accept %s", ErrMethodNotAllowed, asked, MethodTPM)
	case len(admitting) == 0:
		return "", "", fmt.Errorf("%w: no pool admits certified TPM EKs; EK sha256 %s is not registered", ErrEKNotRegistered, ek.hash)
	case len(admitting) > 1:
		return "", "", fmt.Errorf("%w: several pools admit this TPM; name one", ErrInvalidRequest)
	}
	return admitting[0].Pool, TPMWorkerID(ek.hash), nil
}

func (s *Service) tpmPool(name string) (TPMPool, bool) {
	for _, p := range s.cfg.TPM.Pools {
		if p.Pool == name {
			return p, true
		}
	}
	return TPMPool{}, false
}

// FinishTPM runs the second round: the session must be outstanding and
// the secret the one its credential carries; then the CSR of the first
// round is issued, consuming the session in the ledger's transaction. A
// wrong secret burns the session.
func (s *Service) FinishTPM(ctx context.Context, req tpmwire.FinishRequest) (*Result, error) {
	start := s.cfg.Clock()
	sess, hash, err := s.tpmSession(ctx, req)
	if err != nil {
		pool := "unknown"
		if sess != nil {
			pool = sess.Pool
		}
		s.cfg.Logger.WarnContext(ctx, "TPM session refused", "pool", pool, "error", err)
		s.observe(pool, MethodTPM, err, start)
		return nil, err
	}
	subject := "tpm:" + sess.EKSHA256
	res, err := s.issueLimited(sess.Pool, MethodTPM, start, func() (*Result, error) {
		return s.Issue(ctx, Request{
			CSR:                sess.CSR,
			Identity:           ca.Identity{Pool: sess.Pool, WorkerID: sess.WorkerID, Method: MethodTPM, EnrollmentID: sess.EKSHA256},
			AttestationSubject: subject,
			Evidence:           json.RawMessage(sess.Evidence),
			NonceHash:          hash,
			Actor:              subject,
		})
	})
	switch {
	case errors.Is(err, ErrNonceUsed):
		return nil, fmt.Errorf("%w (%v)", ErrSessionUsed, err)
	case errors.Is(err, ErrNonceExpired):
		return nil, fmt.Errorf("%w (%v)", ErrSessionExpired, err)
	case errors.Is(err, ErrNonceInvalid):
		return nil, fmt.Errorf("%w (%v)", ErrSessionInvalid, err)
	}
	return res, err
}

// tpmSession reads the session req finishes and checks it is outstanding
// and that req's secret is its credential's; a wrong secret burns it. It
// returns the session (when it was read) and its hash.
func (s *Service) tpmSession(ctx context.Context, req tpmwire.FinishRequest) (*store.TPMSession, string, error) {
	if s.cfg.TPM == nil {
		return nil, "", fmt.Errorf("%w: method %s is not configured on this CA", ErrUnknownMethod, MethodTPM)
	}
	if !validSessionHandle(req.Session) {
		return nil, "", fmt.Errorf("%w: not a session from %s", ErrSessionInvalid, tpmwire.StartPath)
	}
	if len(req.Secret) == 0 || len(req.Secret) > 64 {
		return nil, "", fmt.Errorf("%w: secret must be 1 to 64 bytes", ErrInvalidRequest)
	}
	hash := hashNonce(req.Session)
	sess, err := s.cfg.Ledger.TPMSession(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, hash, fmt.Errorf("%w: never issued or pruned", ErrSessionInvalid)
	case err != nil:
		return nil, hash, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	case sess.UsedAt != nil:
		return sess, hash, fmt.Errorf("%w: at %s", ErrSessionUsed, sess.UsedAt.Format(time.RFC3339))
	case !s.cfg.Clock().Before(sess.ExpiresAt):
		return sess, hash, fmt.Errorf("%w: at %s", ErrSessionExpired, sess.ExpiresAt.Format(time.RFC3339))
	}
	sum := sha256.Sum256(req.Secret)
	want, err := hex.DecodeString(sess.SecretHash)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		if _, berr := s.cfg.Ledger.BurnChallenge(ctx, hash, s.cfg.Clock()); berr != nil {
			s.cfg.Logger.ErrorContext(ctx, "burning a TPM session", "error", berr)
		}
		return sess, hash, fmt.Errorf("%w: the secret is not the credential's (EK sha256 %s); the session is spent, start again", ErrActivationFailed, sess.EKSHA256)
	}
	return sess, hash, nil
}

// sessionHandle is a new session: SessionPrefix and NonceLength
// characters of the nonce alphabet (190 bits). Only its hash is stored.
func sessionHandle(r io.Reader) (string, error) {
	n, err := randomNonce(r)
	if err != nil {
		return "", err
	}
	return tpmwire.SessionPrefix + n, nil
}

func validSessionHandle(s string) bool {
	rest, ok := strings.CutPrefix(s, tpmwire.SessionPrefix)
	return ok && validNonce(rest)
}

// tpmError maps package tpmattest's refusals to the RA's kinds.
func tpmError(err error) error {
	if errors.Is(err, tpmattest.ErrMalformed) {
		return fmt.Errorf("%w: %v", ErrEvidenceMalformed, err)
	}
	return fmt.Errorf("%w: %v", ErrAttestationInvalid, err)
}

// RegisterTPMEK is `workerca tpm register`: it admits the EK with that
// hash into pool (and names its worker, if workerID is set).
func (s *Service) RegisterTPMEK(ctx context.Context, hash, pool, workerID, actor string) (*store.TPMEK, error) {
	hash = strings.ToLower(strings.TrimSpace(hash))
	if !validEKHash(hash) {
		return nil, fmt.Errorf("%w: ek_sha256 must be 64 hex digits (SHA-256 of the EK public key's PKIX DER)", ErrInvalidRequest)
	}
	if _, err := s.Pool(pool); err != nil {
		return nil, err
	}
	if s.cfg.TPM == nil {
		return nil, fmt.Errorf("%w: method %s is not configured on this CA", ErrUnknownMethod, MethodTPM)
	}
	p, ok := s.tpmPool(pool)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: pool %s does not accept method %s", ErrMethodNotAllowed, pool, MethodTPM)
	case !p.admits(true):
		return nil, fmt.Errorf("%w: pool %s admits EK certificates only (tpm.ek %q), not registered EKs", ErrMethodNotAllowed, pool, p.EK)
	}
	if workerID != "" {
		if err := ca.CheckWorkerID(workerID); err != nil {
			return nil, fmt.Errorf("%w: worker_id: %v", ErrInvalidRequest, err)
		}
	}
	row := &store.TPMEK{EKSHA256: hash, Pool: pool, WorkerID: workerID, CreatedBy: actor, CreatedAt: s.cfg.Clock().UTC()}
	detail, _ := json.Marshal(map[string]string{"pool": pool, "worker_id": workerID})
	err := s.cfg.Ledger.RegisterTPMEK(ctx, row, store.AuditEvent{Actor: actor, Action: "tpm_ek.registered", Target: hash, Detail: string(detail)})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return nil, fmt.Errorf("%w: EK sha256 %s is already registered; unregister it first", ErrTPMEKExists, hash)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return row, nil
}

// UnregisterTPMEK removes an EK registration. Certificates it led to stay
// valid until revoked (revoke by subject "tpm:<ek_sha256>").
func (s *Service) UnregisterTPMEK(ctx context.Context, hash, actor string) error {
	hash = strings.ToLower(strings.TrimSpace(hash))
	if !validEKHash(hash) {
		return fmt.Errorf("%w: ek_sha256 must be 64 hex digits", ErrInvalidRequest)
	}
	err := s.cfg.Ledger.UnregisterTPMEK(ctx, hash, store.AuditEvent{At: s.cfg.Clock().UTC(), Actor: actor, Action: "tpm_ek.unregistered", Target: hash})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: EK sha256 %s is not registered", ErrTPMEKUnknown, hash)
	case err != nil:
		return fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return nil
}

// TPMEKs lists registrations, of one pool if pool is set.
func (s *Service) TPMEKs(ctx context.Context, pool string) ([]store.TPMEK, error) {
	out, err := s.cfg.Ledger.TPMEKs(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLedgerUnavailable, err)
	}
	return out, nil
}

// tpmEvidence is what a TPM certificate's ledger evidence says about its
// TPM, and what its renewals carry forward.
type tpmEvidence struct {
	EKSHA256 string `json:"ek_sha256"`
	AKName   string `json:"ak_name"`
	AKPublic string `json:"ak_public"`
}

// renewTPM checks a TPM worker's renewal: certify must be TPM2_Certify of
// the CSR's key by the AK its enrollment proved (recorded in the ledger
// row), so every key of the renewal chain is bound to that TPM like the
// first. It returns the renewal's evidence summary.
func renewTPM(row *store.Certificate, csrDER []byte, certify *tpmwire.Certify) (map[string]any, error) {
	var ev tpmEvidence
	if err := json.Unmarshal([]byte(row.Evidence), &ev); err != nil || ev.AKPublic == "" {
		return nil, fmt.Errorf("%w: the ledger does not record the AK of TPM certificate %s", ErrReattestationRequired, row.Serial)
	}
	if certify == nil {
		return nil, fmt.Errorf("%w: a TPM worker renews with tpm_certify: TPM2_Certify of the new key by its AK", ErrEvidenceMalformed)
	}
	public, err := base64.StdEncoding.DecodeString(ev.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: the ledger's AK of certificate %s: %v", ErrReattestationRequired, row.Serial, err)
	}
	ak, err := tpmattest.ParseAK(public)
	if err != nil {
		return nil, fmt.Errorf("%w: the ledger's AK of certificate %s: %v", ErrReattestationRequired, row.Serial, err)
	}
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	keyName, err := ak.CheckCertify(*certify, csr.PublicKey)
	if err != nil {
		return nil, tpmError(err)
	}
	return map[string]any{"renewal_of": row.Serial, "ek_sha256": ev.EKSHA256, "ak_name": ak.Name,
		"ak_public": ev.AKPublic, "key_name": keyName}, nil
}
