package workertls

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Authorizer decides whether a verified peer's SPIFFE ID may connect. It
// returns nil to allow; its error is wrapped with ErrNotAuthorized.
type Authorizer func(id spiffeid.ID) error

// AllowPools allows the workers of the given pools in trust domain td:
// the IDs spiffe://<td>/worker/<pool>/<worker-id>.
func AllowPools(td spiffeid.TrustDomain, pools ...string) Authorizer {
	pools = slices.Clone(pools)
	return func(id spiffeid.ID) error {
		if !id.MemberOf(td) {
			return fmt.Errorf("%s is not in trust domain %s", id, td)
		}
		pool, _, ok := WorkerPath(id)
		if !ok {
			return fmt.Errorf("%s is not a worker ID (spiffe://<td>/worker/<pool>/<worker-id>)", id)
		}
		if !slices.Contains(pools, pool) {
			return fmt.Errorf("%s: pool %q is not one of %q", id, pool, pools)
		}
		return nil
	}
}

// AllowIDs allows exactly the given SPIFFE IDs.
func AllowIDs(ids ...spiffeid.ID) Authorizer {
	ids = slices.Clone(ids)
	return func(id spiffeid.ID) error {
		if !slices.Contains(ids, id) {
			return fmt.Errorf("%s is not an allowed ID", id)
		}
		return nil
	}
}

// WorkerPath splits a worker's SPIFFE ID, spiffe://<td>/worker/<pool>/<worker-id>,
// into its pool and worker ID; ok is false for any other path.
func WorkerPath(id spiffeid.ID) (pool, worker string, ok bool) {
	seg := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(seg) != 3 || seg[0] != "worker" || seg[1] == "" || seg[2] == "" {
		return "", "", false
	}
	return seg[1], seg[2], true
}

// PeerID returns the SPIFFE ID of the client certificate of r, a request
// to a server using NewServerConfig (which has already verified it).
// Without TLS or a client certificate the error wraps ErrNoPeer.
func PeerID(r *http.Request) (spiffeid.ID, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return spiffeid.ID{}, ErrNoPeer
	}
	return SVIDID(r.TLS.PeerCertificates[0])
}

// SVIDID returns the SPIFFE ID of an X509-SVID leaf: exactly one URI SAN,
// a valid SPIFFE ID (go-spiffe's parser), and not a CA (SPIFFE X509-SVID
// §4.1, §5.2). Errors wrap ErrNotSVID.
func SVIDID(leaf *x509.Certificate) (spiffeid.ID, error) {
	if len(leaf.URIs) != 1 {
		return spiffeid.ID{}, fmt.Errorf("%w: %d URI SANs, want exactly one", ErrNotSVID, len(leaf.URIs))
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: URI SAN %q: %v", ErrNotSVID, leaf.URIs[0], err)
	}
	if leaf.IsCA {
		return spiffeid.ID{}, fmt.Errorf("%w: %s is a CA certificate", ErrNotSVID, id)
	}
	return id, nil
}
