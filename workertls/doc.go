// Package workertls builds TLS configurations for services that talk to
// or accept workerca workers: NewClientConfig for a worker connecting
// with its certificate, NewServerConfig for a service verifying the
// workers that connect to it.
//
// Both read a credential directory as workerca-agent and enroll.sh write
// it (KeyFile, CertFile, ChainFile, BundleFile) and pick up renewals
// without a restart: a Source stats the files at most every
// ReloadInterval, reloads the key and chain as a pair, never serves a key
// that does not match its certificate, and keeps the last good pair when
// a read is bad or partial. Nothing runs in the background; there is
// nothing to close.
//
// A server accepts a worker whose chain verifies to the trust bundle
// (clientAuth), whose certificate is an X509-SVID, whose SPIFFE ID the
// Authorizer allows (AllowPools, AllowIDs) and that is not on its CRL,
// fetched from the certificate's CRL distribution point and cached for
// at most RefreshInterval (default 5 minutes). When no CRL can be had the
// worker is refused, unless FailOpen. The package imports neither the
// ledger nor the web server: a service embedding it pulls in the
// standard library, go-spiffe's spiffeid and x/crypto's cryptobyte.
//
// A service:
//
//	td := spiffeid.RequireTrustDomainFromString("workers.example.com")
//	tc, err := workertls.NewServerConfig(ctx, workertls.ServerConfig{
//		Dir:       "/var/lib/myservice/tls", // its own key.pem, chain.pem, bundle.pem
//		Authorize: workertls.AllowPools(td, "ci"),
//	})
//	srv := &http.Server{Addr: ":8443", TLSConfig: tc, Handler: http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			id, _ := workertls.PeerID(r) // verified by the handshake
//			fmt.Fprintf(w, "hello %s\n", id)
//		})}
//	err = srv.ListenAndServeTLS("", "")
//
// A worker:
//
//	tc, err := workertls.NewClientConfig(ctx, workertls.ClientConfig{
//		Dir:             "/var/lib/workerca-agent",
//		AuthorizeServer: workertls.AllowIDs(spiffeid.RequireFromString("spiffe://workers.example.com/worker/services/queue")),
//	})
//	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
//
// Without AuthorizeServer the client checks the server as ordinary TLS
// does (serverAuth, host name), against the same bundle.
//
// Errors wrap ErrConfig, ErrFiles, ErrUntrusted, ErrNotSVID,
// ErrNotAuthorized, ErrRevoked, ErrRevocationUnavailable or ErrNoPeer.
package workertls
