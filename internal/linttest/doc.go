// Package linttest runs zlint over certificates and CRLs in tests.
//
// It runs the lints whose source is an IETF RFC (RFC 5280 above all, and
// RFC 3279, 5480, 5891, 6960, 6962 and 8813, whose lints apply only when
// their subject is present) and zlint's Community lints, which check
// general encoding hygiene. It leaves out the CA/Browser Forum
// requirements (TLS baseline, EV, S/MIME, code signing), the browser root
// programs (Mozilla, Apple, Chrome) and ETSI: those govern publicly trusted
// certificates, and workerca's private PKI is none of those.
//
// Usage:
//
//	func TestIssue(t *testing.T) {
//		cert := issue(t)
//		linttest.Certificate(t, cert)
//		linttest.CRL(t, crlDER)
//	}
//
// Each lint that ends in Error or Fatal fails the test with the lint's
// name, source and details; each Warn is logged with t.Logf.
package linttest
