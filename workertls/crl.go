package workertls

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/workerca/workerca/internal/crlscope"
)

// maxCRLBytes bounds a fetched CRL: a sharded workerca CRL with a
// million entries is about 40 MB.
const maxCRLBytes = 64 << 20

// retryAfterFailure is the least time between two fetches of a CRL after
// a failed one (capped by RefreshInterval), so that an unreachable CA is
// not asked on every handshake.
const retryAfterFailure = 2 * time.Second

// crlCache holds one CRL per distribution point URL.
type crlCache struct {
	client  *http.Client
	refresh time.Duration
	clock   func() time.Time
	logger  *slog.Logger

	mu      sync.Mutex
	entries map[string]*crlEntry
}

// crlEntry is one distribution point's CRL, as last fetched and checked.
type crlEntry struct {
	mu        sync.Mutex // held across a fetch, so one fetch per URL at a time
	crl       *x509.RevocationList
	verified  [][]byte // raw issuer certificates crl's signature verified with
	fetchedAt time.Time
	failedAt  time.Time
	failure   error
}

func newCRLCache(cfg ServerConfig) *crlCache {
	return &crlCache{client: cfg.HTTPClient, refresh: cfg.RefreshInterval, clock: cfg.Clock, logger: cfg.Logger, entries: map[string]*crlEntry{}}
}

// check returns nil if leaf is not on the CRL of any of its HTTP(S)
// distribution points, an error wrapping ErrRevoked if it is, and one
// wrapping ErrRevocationUnavailable if no distribution point gave a
// usable CRL. issuers are the leaf's issuers in its verified chains.
func (c *crlCache) check(ctx context.Context, leaf *x509.Certificate, issuers []*x509.Certificate) error {
	var problems []string
	for _, u := range leaf.CRLDistributionPoints {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			continue
		}
		crl, err := c.crl(ctx, u, leaf, issuers)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return fmt.Errorf("%w: serial %s on %s since %s (reason %d)", ErrRevoked,
					serialHex(leaf), u, e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)
			}
		}
		return nil
	}
	if len(problems) == 0 {
		return fmt.Errorf("%w: serial %s has no HTTP CRL distribution point", ErrRevocationUnavailable, serialHex(leaf))
	}
	return fmt.Errorf("%w: serial %s: %s", ErrRevocationUnavailable, serialHex(leaf), strings.Join(problems, "; "))
}

// crl returns a CRL from url that is fresh, signed by one of issuers and
// covers leaf, fetching it if the one held is older than RefreshInterval
// or past its nextUpdate.
func (c *crlCache) crl(ctx context.Context, url string, leaf *x509.Certificate, issuers []*x509.Certificate) (*x509.RevocationList, error) {
	c.mu.Lock()
	e := c.entries[url]
	if e == nil {
		e = &crlEntry{}
		c.entries[url] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.clock()
	due := e.crl == nil || now.Sub(e.fetchedAt) >= c.refresh || !now.Before(e.crl.NextUpdate)
	if due && (e.failure == nil || now.Sub(e.failedAt) >= min(retryAfterFailure, c.refresh)) {
		crl, err := c.fetch(ctx, url)
		if err == nil {
			err = checkScope(crl, url)
		}
		if err != nil {
			e.failure, e.failedAt = err, now
			c.logger.Warn("workertls: CRL fetch failed", "url", url, "err", err)
		} else {
			e.crl, e.verified, e.fetchedAt, e.failure = crl, nil, now, nil
			c.logger.Debug("workertls: CRL fetched", "url", url, "number", crl.Number, "entries", len(crl.RevokedCertificateEntries), "next_update", crl.NextUpdate.UTC())
		}
	}
	if e.crl == nil {
		return nil, fmt.Errorf("%s: %v", url, e.failure)
	}
	if !now.Before(e.crl.NextUpdate) {
		return nil, fmt.Errorf("%s: CRL is past its nextUpdate %s (last fetch: %v)", url, e.crl.NextUpdate.UTC().Format(time.RFC3339), e.failure)
	}
	if err := e.verify(issuers); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return e.crl, nil
}

// verify checks that e.crl is signed by one of issuers (RFC 5280 §6.3.3
// (f)), remembering the issuers that verified. e.mu is held.
func (e *crlEntry) verify(issuers []*x509.Certificate) error {
	for _, iss := range issuers {
		if slices.ContainsFunc(e.verified, func(raw []byte) bool { return bytes.Equal(raw, iss.Raw) }) {
			return nil
		}
	}
	for _, iss := range issuers {
		if bytes.Equal(e.crl.RawIssuer, iss.RawSubject) && e.crl.CheckSignatureFrom(iss) == nil {
			e.verified = append(e.verified, iss.Raw)
			return nil
		}
	}
	return errors.New("CRL is not signed by the certificate's issuer")
}

// fetch GETs and parses the CRL at url.
func (c *crlCache) fetch(ctx context.Context, url string) (*x509.RevocationList, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLBytes+1))
	if err != nil {
		return nil, err
	}
	if len(der) > maxCRLBytes {
		return nil, fmt.Errorf("CRL larger than %d bytes", maxCRLBytes)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	if crl.NextUpdate.IsZero() {
		return nil, errors.New("CRL has no nextUpdate")
	}
	return crl, nil
}

// checkScope refuses a CRL fetched from url whose issuingDistributionPoint
// does not make it the complete CRL for url's certificates: a
// distributionPoint that does not name url, or onlyContainsCACerts,
// onlySomeReasons, indirectCRL or onlyContainsAttributeCerts (RFC 5280
// §5.2.5, §6.3.3 (b)(2)). A CRL with no issuingDistributionPoint is a
// full CRL of its issuer and covers everything. workerca's CRLs carry a
// critical one naming the shard's URL, with onlyContainsUserCerts.
func checkScope(crl *x509.RevocationList, url string) error {
	for _, ext := range crl.Extensions {
		if !ext.Id.Equal(crlscope.OID) {
			continue
		}
		p, err := crlscope.Parse(ext.Value)
		if err != nil {
			return err
		}
		if p.Partial {
			return errors.New("CRL's issuingDistributionPoint limits it to part of the certificates or reasons")
		}
		if p.HasName && !slices.Contains(p.URIs, url) {
			return fmt.Errorf("CRL's issuingDistributionPoint names %q, not the distribution point it was fetched from", p.URIs)
		}
	}
	return nil
}
