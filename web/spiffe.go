package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// SPIFFERefreshHint is the spiffe_refresh_hint of GET /v1/bundle.spiffe
// and the max-age of its answer: how often a SPIFFE consumer should fetch
// the bundle again (SPIFFE Trust Domain and Bundle §4.1.2; §6.2 suggests
// five minutes). A root added to or removed from the configuration reaches
// consumers within about twice this.
const SPIFFERefreshHint = 5 * time.Minute

// spiffeBundle serves the trust bundle in the SPIFFE bundle format (SPIFFE
// Trust Domain and Bundle §4): a JWK Set with one key per root, each with
// "use": "x509-svid" and the root's DER in "x5c" (X509-SVID §6.1). The
// trust domain is not part of the document; a consumer pairs the URL with
// it out of band (§5). spiffe_sequence is omitted (it is optional): the
// roots come from the configuration, and no number kept here would grow
// on every change of it across restarts and replicas.
func (s *Server) spiffeBundle(c echo.Context) error {
	td, err := spiffeid.TrustDomainFromString(s.cfg.Enroll.TrustDomain())
	if err != nil {
		return fmt.Errorf("web: spiffe bundle: trust domain: %w", err)
	}
	b := spiffebundle.FromX509Authorities(td, s.cfg.Roots)
	b.SetRefreshHint(SPIFFERefreshHint)
	doc, err := b.Marshal()
	if err != nil {
		return fmt.Errorf("web: spiffe bundle: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(SPIFFERefreshHint/time.Second)))
	return c.Blob(http.StatusOK, contentJSON, doc)
}
