// Package awsiid verifies AWS EC2 instance identity documents: the
// evidence of the enrollment method "aws-iid". It checks AWS's signature
// and a caller's policy and says what the document vouches for; it never
// signs anything and keeps no state beyond its trusted certificates.
//
// # Usage
//
//	v, err := awsiid.New(awsiid.Config{Clock: clock}) // trusts Shipped()
//	...
//	ev, err := awsiid.DecodeEvidence(rawJSON)
//	doc, err := v.Verify(ev, awsiid.Policy{
//		Accounts: []string{"111122223333"},
//		Regions:  []string{"us-east-1", "eu-west-1"}, // empty: any region
//		MaxAge:   10 * time.Minute,                   // since pendingTime
//	})
//	switch {
//	case errors.Is(err, awsiid.ErrSignature): ...
//	}
//	// doc.InstanceID, doc.AccountID, doc.Region, doc.Form, ...
//
// A worker builds the evidence from IMDS
// (http://169.254.169.254/latest/dynamic/instance-identity/): "document"
// is /document verbatim, plus either "signature" (/signature) or "pkcs7"
// (/rsa2048, or the legacy /pkcs7). Tests use package awsiidtest to mint
// evidence with a local key.
//
// # Forms and trust
//
// AWS signs each document three ways (FormSignature, FormRSA2048,
// FormPKCS7DSA) and publishes the certificates on its documentation page
// "AWS public certificates for instance identity document signatures".
// They are embedded (Shipped, certs/SOURCES.md records where each came
// from): per region an RSA certificate for /signature and an RSA-2048
// certificate for /rsa2048, and one DSA certificate for /pkcs7 in every
// region. A certificate labelled with a region only verifies documents
// whose "region" is that region, and only in its form; the document's
// region selects the candidates and the signature decides. Extra
// certificates come from Config.Certificates (any region, any form) or
// Config.Regional (labelled).
//
// Only a certificate's public key is used. AWS's certificates are
// self-signed and long-lived, and AWS re-issues them with the same key
// (the shared RSA-1024 one in 2024), so validity dates, extensions and
// chains are not checked; a document signed in 2018 verifies with the
// certificate re-issued in 2024.
//
// # Rules
//
//   - The signature covers the exact document bytes; they are never
//     re-serialized. With /signature, it is RSA PKCS#1 v1.5 over SHA-256.
//   - A PKCS#7 (BER, indefinite lengths allowed; PEM armor and line breaks
//     ignored) must have one signer and embed the document. Its signed
//     attributes must name id-data as content type and carry the content's
//     digest (RFC 5652 §5.4, §11). DSA-SHA1 is verified with crypto/dsa,
//     which Go's x509 no longer does. Certificates inside the PKCS#7 are
//     ignored.
//   - If the evidence has both "document" and "pkcs7", they must be equal
//     byte for byte; if "document" is empty, the document is the PKCS#7
//     content, which the signature covers.
//   - Policy.Accounts must name the account: an empty list admits none.
//   - pendingTime (the instance's launch or last start) may be at most
//     Policy.MaxAge (default DefaultMaxAge) before the clock and at most
//     ClockSkew after it.
//
// Refusals wrap ErrMalformed, ErrSignature, ErrAccountNotAllowed,
// ErrRegionNotAllowed, ErrTooOld or ErrFromFuture, with a detail for the
// log.
package awsiid
