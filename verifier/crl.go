package verifier

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/workerca/workerca/internal/crlscope"
	"github.com/workerca/workerca/revocation/status"
	"golang.org/x/crypto/cryptobyte"
)

// oidInvalidityDate is the CRL entry extension of RFC 5280 §5.3.2.
var oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}

// checkCRL finishes r with the newest CRL that covers the leaf (crlFor);
// chains are the verified chains, leaf first.
func (v *Verifier) checkCRL(r *Result, chains [][]*x509.Certificate, when instant) (*Result, error) {
	leaf, at, now := chains[0][0], when.at, when.now
	crl, err := v.crlFor(chains)
	if err != nil {
		return nil, err
	}
	if crl.NextUpdate.IsZero() || crl.NextUpdate.Before(now) {
		return nil, fmt.Errorf("%w: the newest CRL covering serial %s is stale (nextUpdate %s has passed); fetch a fresh one",
			ErrUnavailable, r.Serial, crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber == nil || e.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			continue
		}
		invalidity, err := invalidityDate(e)
		if err != nil {
			return nil, fmt.Errorf("%w: CRL entry of serial %s: %v", ErrUnavailable, r.Serial, err)
		}
		revokedAt := e.RevocationTime.UTC()
		reason := status.Reason(e.ReasonCode)
		compromised := reason == status.KeyCompromise
		if !at.Before(revokedAt) || (compromised && (invalidity == nil || !at.Before(*invalidity))) {
			return r.revoked(&revokedAt, reason.String(), invalidity), nil
		}
		return r.accept(laterRevocation(&revokedAt, reason.String(), invalidity)), nil
	}
	// workerca keeps an entry until one CRL issued after the
	// certificate's notAfter has listed it: a later CRL's silence proves
	// nothing.
	if crl.ThisUpdate.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: the CRL (thisUpdate %s) was issued after the certificate expired (%s) and may no longer list it; use the status API",
			ErrUnavailable, crl.ThisUpdate.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return r.accept(""), nil
}

// crlFor returns the newest of the configured CRLs that is signed by the
// leaf's issuer in a verified chain and whose scope covers the leaf
// (RFC 5280 §6.3.3 (b)).
func (v *Verifier) crlFor(chains [][]*x509.Certificate) (*x509.RevocationList, error) {
	leaf := chains[0][0]
	var issuers []*x509.Certificate
	for _, ch := range chains {
		if len(ch) > 1 && !slices.ContainsFunc(issuers, ch[1].Equal) {
			issuers = append(issuers, ch[1])
		}
	}
	var best *x509.RevocationList
	for _, crl := range v.cfg.CRLs {
		if !slices.ContainsFunc(issuers, func(iss *x509.Certificate) bool {
			return bytes.Equal(crl.RawIssuer, iss.RawSubject) && crl.CheckSignatureFrom(iss) == nil
		}) {
			continue
		}
		if !covers(crl, leaf) {
			continue
		}
		if best == nil || crl.ThisUpdate.After(best.ThisUpdate) ||
			(crl.ThisUpdate.Equal(best.ThisUpdate) && crl.Number != nil && best.Number != nil && crl.Number.Cmp(best.Number) > 0) {
			best = crl
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: none of the %d CRLs is signed by the certificate's issuer and covers its distribution point %v",
			ErrUnavailable, len(v.cfg.CRLs), leaf.CRLDistributionPoints)
	}
	return best, nil
}

// covers reports whether crl's scope includes leaf: with no
// issuingDistributionPoint, a full CRL of its issuer; with one, a CRL of
// end-entity certificates for every reason, not indirect, whose
// distribution point names (if any) include one of leaf's
// cRLDistributionPoints (RFC 5280 §5.2.5, §6.3.3 (b)(2)).
func covers(crl *x509.RevocationList, leaf *x509.Certificate) bool {
	for _, ext := range crl.Extensions {
		if !ext.Id.Equal(crlscope.OID) {
			continue
		}
		idp, err := crlscope.Parse(ext.Value)
		if err != nil || idp.Partial {
			return false
		}
		if idp.HasName {
			return slices.ContainsFunc(idp.URIs, func(u string) bool { return slices.Contains(leaf.CRLDistributionPoints, u) })
		}
	}
	return true
}

// invalidityDate reads a CRL entry's invalidityDate extension (RFC 5280
// §5.3.2: GeneralizedTime), nil when absent.
func invalidityDate(e x509.RevocationListEntry) (*time.Time, error) {
	for _, ext := range e.Extensions {
		if !ext.Id.Equal(oidInvalidityDate) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var t time.Time
		if !in.ReadASN1GeneralizedTime(&t) || !in.Empty() {
			return nil, errors.New("malformed invalidityDate")
		}
		t = t.UTC()
		return &t, nil
	}
	return nil, nil
}
