// Package ocsp parses OCSP requests and encodes signed OCSP responses
// (RFC 6960), following the lightweight profile of RFC 5019 and RFC 9919
// and the nonce rules of RFC 9654.
//
// It is a pure encoder: it reads no clock, keeps no state and knows nothing
// of storage or HTTP. The caller looks the serial number up, decides the
// status and the times, and hands them to Responder.Sign; the web layer
// turns ErrMalformed into ErrorResponse(MalformedRequest).
//
// golang.org/x/crypto/ocsp is not used for encoding because it puts extra
// extensions in singleExtensions, where a nonce does not belong (RFC 9654
// §2.1 puts it in responseExtensions), and its ParseRequest drops request
// extensions, nonce included.
//
// What a response looks like:
//
//   - one SingleResponse, for the one Request a request may hold;
//   - a CertID with the request's hash algorithm (NULL parameters) and
//     issuer hashes computed from the configured issuer;
//   - ResponderID byKey; version v1, left out as the DEFAULT;
//   - GeneralizedTime in UTC, whole seconds only;
//   - nextUpdate always present;
//   - signed by a delegated responder certificate (RFC 6960 §4.2.2.2),
//     which is the only certificate in certs;
//   - the request's nonce, if the caller echoes it, as the only
//     responseExtension.
//
// Typical use, in an HTTP handler that has read the request body der:
//
//	responder, err := ocsp.New(ocsp.Config{Issuer: intermediate, Cert: responderCert, Key: responderKey})
//	...
//	req, err := ocsp.ParseRequest(der)
//	if err != nil {
//		return ocsp.ErrorResponse(ocsp.MalformedRequest)
//	}
//	if !req.MatchesIssuer(intermediate) {
//		return ocsp.ErrorResponse(ocsp.Unauthorized)
//	}
//	now := clock.Now().UTC().Truncate(time.Second)
//	status := lookUp(req.SerialNumber) // Good, Revoked or Unknown
//	return responder.Sign(ocsp.Response{
//		Status:        status,
//		SerialNumber:  req.SerialNumber,
//		HashAlgorithm: req.HashAlgorithm,
//		Reason:        -1,
//		ThisUpdate:    now,
//		NextUpdate:    now.Add(time.Hour),
//		ProducedAt:    now,
//		Nonce:         req.Nonce,
//	})
package ocsp
