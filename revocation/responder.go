package revocation

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/revocation/ocsp"
	"github.com/workerca/workerca/store"
)

// maxCachedAnswers bounds the OCSP cache; past it, half is dropped.
const maxCachedAnswers = 1 << 20

// OCSPAnswer is a DER OCSPResponse and what HTTP caching needs.
type OCSPAnswer struct {
	// DER is the OCSPResponse.
	DER []byte
	// Cacheable is false for error answers and answers with a nonce.
	Cacheable bool
	// ThisUpdate, NextUpdate and ProducedAt are the signed times (zero for
	// error answers).
	ThisUpdate, NextUpdate, ProducedAt time.Time
	// ETag is a strong entity tag of DER.
	ETag string
	// LastModified and Expires are ThisUpdate and NextUpdate in the HTTP
	// date format, computed once per answer rather than per request.
	LastModified, Expires string
}

// certStatus is what an answer says about one certificate.
type certStatus struct {
	status    ocsp.Status
	revokedAt time.Time
	reason    int
}

type answerKey struct {
	serial string
	hash   crypto.Hash
}

type cachedAnswer struct {
	answer *OCSPAnswer
	status certStatus
}

// responder answers OCSP requests from pre-signed answers kept in memory:
// an answer is signed on first request, re-signed after half its
// validity, and dropped at once when its certificate is revoked, here or
// (through the ledger's notices) on another replica.
type responder struct {
	s *Service

	mu     sync.RWMutex
	signer *ocsp.Responder
	cert   *x509.Certificate
	cache  map[answerKey]*cachedAnswer
	// epoch counts forgets and renewals: an answer built from a ledger
	// read made before one of them is not cached, so a revocation racing
	// a request cannot leave "good" in the cache.
	epoch uint64
}

func newResponder(s *Service) *responder {
	return &responder{s: s, cache: map[answerKey]*cachedAnswer{}}
}

// renew gets a new responder certificate and key, and drops every answer
// the old one signed.
func (r *responder) renew(ctx context.Context) error {
	cert, key, err := r.s.cfg.IssueResponder(ctx, r.s.cfg.ResponderTTL)
	if err != nil {
		return fmt.Errorf("revocation: responder certificate: %w", err)
	}
	signer, err := ocsp.New(ocsp.Config{Issuer: r.s.cfg.Issuer, Cert: cert, Key: key})
	if err != nil {
		return fmt.Errorf("revocation: responder: %w", err)
	}
	r.mu.Lock()
	r.signer, r.cert = signer, cert
	r.cache = map[answerKey]*cachedAnswer{}
	r.epoch++
	r.mu.Unlock()
	return nil
}

// renewDue reports whether two thirds of the responder certificate's
// life have passed.
func (r *responder) renewDue(now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.cert == nil {
		return true
	}
	life := r.cert.NotAfter.Sub(r.cert.NotBefore)
	due := r.cert.NotBefore.Add(life * 2 / 3)
	// Renew while an answer signed now still ends before notAfter.
	if d := r.cert.NotAfter.Add(-r.s.cfg.OCSPValidity); d.Before(due) {
		due = d
	}
	return !now.Before(due)
}

// loop renews the responder certificate when due and drops answers past
// half their validity (the next request re-signs them).
func (r *responder) loop(ctx context.Context) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := r.s.cfg.Clock()
		if r.renewDue(now) {
			if err := r.renew(ctx); err != nil {
				r.s.cfg.Logger.ErrorContext(ctx, "OCSP responder renewal failed", "error", err)
			}
		}
		r.mu.Lock()
		for k, e := range r.cache {
			if r.stale(e, now) {
				delete(r.cache, k)
			}
		}
		r.mu.Unlock()
	}
}

func (r *responder) stale(e *cachedAnswer, now time.Time) bool {
	return !now.Before(e.answer.ThisUpdate.Add(e.answer.NextUpdate.Sub(e.answer.ThisUpdate) / 2))
}

// forget drops the cached answers of serials: the next request reads
// the ledger again.
func (r *responder) forget(serials ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	for _, serial := range serials {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			delete(r.cache, answerKey{serial, h})
		}
	}
}

// forgetAll drops every cached answer.
func (r *responder) forgetAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	r.cache = map[answerKey]*cachedAnswer{}
}

// errorAnswer is an unsigned OCSP error answer.
func errorAnswer(st ocsp.ResponseStatus) *OCSPAnswer {
	return &OCSPAnswer{DER: ocsp.ErrorResponse(st)}
}

// OCSP answers one DER OCSP request (RFC 6960). It always returns an
// answer: malformedRequest for garbage, tryLater before Start,
// unauthorized for another issuer, tryLater when the ledger is down and
// nothing valid is cached, else a
// signed good, revoked or unknown (a serial this CA never issued).
func (s *Service) OCSP(ctx context.Context, der []byte) *OCSPAnswer {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return errorAnswer(ocsp.MalformedRequest)
	}
	r := s.ocsp
	key := answerKey{ca.SerialHex(req.SerialNumber), req.HashAlgorithm}
	now := s.cfg.Clock()
	r.mu.RLock()
	signer, cached, epoch := r.signer, r.cache[key], r.epoch
	r.mu.RUnlock()
	if signer == nil { // not started
		return errorAnswer(ocsp.TryLater)
	}
	if !signer.MatchesIssuer(req) {
		return errorAnswer(ocsp.Unauthorized)
	}
	if cached != nil && !r.stale(cached, now) {
		if req.Nonce == nil {
			return cached.answer
		}
		return r.sign(req, key, cached.status, now, epoch, false)
	}
	st, err := s.lookup(ctx, key.serial)
	if err != nil {
		// Fail soft: a cached answer that has not expired still stands.
		if cached != nil && now.Before(cached.answer.NextUpdate) && req.Nonce == nil {
			return cached.answer
		}
		s.cfg.Logger.ErrorContext(ctx, "OCSP: ledger unavailable", "error", err)
		return errorAnswer(ocsp.TryLater)
	}
	return r.sign(req, key, st, now, epoch, st.status != ocsp.Unknown)
}

// lookup reads a certificate's status from the ledger.
func (s *Service) lookup(ctx context.Context, serial string) (certStatus, error) {
	c, err := s.cfg.Ledger.Certificate(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return certStatus{status: ocsp.Unknown}, nil
	}
	if err != nil {
		return certStatus{}, err
	}
	if c.RevokedAt == nil {
		return certStatus{status: ocsp.Good}, nil
	}
	reason := -1
	if c.RevocationReason != nil && *c.RevocationReason != 0 {
		reason = *c.RevocationReason
	}
	return certStatus{status: ocsp.Revoked, revokedAt: c.RevokedAt.UTC().Truncate(time.Second), reason: reason}, nil
}

// sign signs an answer; without a nonce it is cached under key when cache
// is set and no forget or renewal happened since epoch.
func (r *responder) sign(req *ocsp.Request, key answerKey, st certStatus, now time.Time, epoch uint64, cache bool) *OCSPAnswer {
	r.mu.RLock()
	signer, cert := r.signer, r.cert
	r.mu.RUnlock()
	if signer == nil {
		return errorAnswer(ocsp.TryLater)
	}
	// thisUpdate is on the minute (RFC 5019 §2.2.4 lets caches share
	// answers), but never before the revocation it reports.
	this := now.UTC().Truncate(time.Minute)
	if st.status == ocsp.Revoked && st.revokedAt.After(this) {
		this = st.revokedAt
	}
	produced := now.UTC().Truncate(time.Second)
	// An answer must not outlive the certificate that signs it.
	next := this.Add(r.s.cfg.OCSPValidity)
	if end := cert.NotAfter.UTC().Truncate(time.Second); next.After(end) {
		next = end
	}
	if !next.After(this) {
		return errorAnswer(ocsp.TryLater)
	}
	resp := ocsp.Response{
		Status: st.status, SerialNumber: req.SerialNumber, HashAlgorithm: req.HashAlgorithm,
		RevokedAt: st.revokedAt, Reason: st.reason,
		ThisUpdate: this, NextUpdate: next, ProducedAt: produced, Nonce: req.Nonce,
	}
	der, err := signer.Sign(resp)
	if err != nil {
		r.s.cfg.Logger.Error("OCSP: sign failed", "error", err)
		return errorAnswer(ocsp.InternalError)
	}
	sum := sha256.Sum256(der)
	a := &OCSPAnswer{DER: der, Cacheable: req.Nonce == nil, ThisUpdate: this, NextUpdate: resp.NextUpdate, ProducedAt: produced,
		ETag:         `"` + hex.EncodeToString(sum[:16]) + `"`,
		LastModified: this.UTC().Format(http.TimeFormat), Expires: resp.NextUpdate.UTC().Format(http.TimeFormat)}
	if cache && req.Nonce == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.epoch != epoch {
			return a
		}
		if len(r.cache) >= maxCachedAnswers {
			n := 0
			for k := range r.cache {
				if n++; n > maxCachedAnswers/2 {
					break
				}
				delete(r.cache, k)
			}
		}
		r.cache[key] = &cachedAnswer{answer: a, status: st}
	}
	return a
}

// MalformedOCSP is the malformedRequest answer, for requests the HTTP
// edge cannot even decode.
func (s *Service) MalformedOCSP() *OCSPAnswer { return errorAnswer(ocsp.MalformedRequest) }
