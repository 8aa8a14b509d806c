// Package web is workerca's HTTP edge: the echo router, the route table
// with each route's access rule, operator API-key authentication, the one
// function that maps errors to HTTP statuses and stable JSON error codes,
// Prometheus metrics, health checks, and the TLS server certificate that
// the intermediate issues for the CA's own HTTPS listener.
//
// Two listeners share one router: the HTTPS listener serves every route;
// the plain HTTP listener serves only routes marked public (bundle,
// intermediates, health, metrics) and answers 403 https_required for the
// rest.
//
//	srv, _ := web.New(web.Config{Enroll: svc, Revocation: rev, Registry: reg, Store: st, Roots: roots, Intermediates: ints})
//	err := srv.Run(ctx, web.RunConfig{HTTPS: httpsLn, HTTP: httpLn, DNSNames: []string{"localhost"}})
package web
