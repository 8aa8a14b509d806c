package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/revocation/status"
	"github.com/workerca/workerca/store"
)

// The statuses of a signed status answer (package status).
const (
	StatusGood        = status.Good
	StatusRevoked     = status.Revoked
	StatusExpired     = status.Expired
	StatusNotYetValid = status.NotYetValid
	StatusUnknown     = status.Unknown
)

// StatusMediaType is the JWS "typ" header of status answers.
const StatusMediaType = status.MediaType

// Status is the payload of a signed status answer (status.Answer).
type Status = status.Answer

// StatusKeys is the JWKS that verifies status answers.
func (s *Service) StatusKeys() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.status.Public}}
}

// Status answers the status of serial at the instant at (nil means now)
// as a compact JWS. A past instant is answered from the ledger: revoked
// if the revocation was recorded by then, or if the reason is
// keyCompromise with an invalidity date at or before it.
func (s *Service) Status(ctx context.Context, serial string, at *time.Time) (string, *Status, error) {
	n, err := ParseSerial(serial)
	if err != nil {
		return "", nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	when := now
	if at != nil {
		when = at.UTC().Truncate(time.Second)
		if when.After(now) {
			return "", nil, fmt.Errorf("%w: at is in the future", ErrInvalidRequest)
		}
	}
	st := &Status{Serial: ca.SerialHex(n), ThisUpdate: now, NextUpdate: now.Add(s.cfg.OCSPValidity), At: when}
	c, err := s.cfg.Ledger.Certificate(ctx, st.Serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		st.Status = StatusUnknown
	case err != nil:
		return "", nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	default:
		judge(st, c, when)
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return "", nil, err
	}
	jws, err := s.status.SignCompact(payload)
	if err != nil {
		return "", nil, fmt.Errorf("revocation: sign status: %w", err)
	}
	return jws, st, nil
}

// judge sets the status of c at when.
func judge(st *Status, c *store.Certificate, when time.Time) {
	if c.RevokedAt != nil {
		reason := Unspecified
		if c.RevocationReason != nil {
			reason = Reason(*c.RevocationReason)
		}
		revoked := !when.Before(*c.RevokedAt) ||
			(reason == KeyCompromise && c.InvalidityDate != nil && !when.Before(*c.InvalidityDate))
		if revoked {
			st.RevokedAt, st.InvalidityDate = c.RevokedAt, c.InvalidityDate
			st.Reason = reason.String()
		}
	}
	switch {
	case when.Before(c.NotBefore):
		st.Status = StatusNotYetValid
	case when.After(c.NotAfter):
		st.Status = StatusExpired
	case st.RevokedAt != nil:
		st.Status = StatusRevoked
	default:
		st.Status = StatusGood
	}
}

// StatusAt is the status of the ledger row c at the instant at, by the
// rules of Service.Status; ThisUpdate and NextUpdate are left zero.
func StatusAt(c *store.Certificate, at time.Time) Status {
	at = at.UTC().Truncate(time.Second)
	st := Status{Serial: c.Serial, At: at}
	judge(&st, c, at)
	return st
}
