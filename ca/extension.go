package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// DefaultEnrollmentOID identifies the enrollment extension when the
// configuration names no OID of its own. It sits under the IANA private
// enterprise number 32473, which RFC 5612 reserves for documentation:
// it collides with no one, but a deployment that needs a globally owned
// identifier sets its own (Config.EnrollmentOID).
var DefaultEnrollmentOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 7734, 1}

// Enrollment is the content of the non-critical enrollment extension that
// every worker certificate carries (DESIGN.md "Identity"):
//
//	WorkerEnrollment ::= SEQUENCE {
//	    pool          UTF8String,
//	    method        UTF8String,
//	    enrollmentID  UTF8String }
type Enrollment struct {
	Pool         string `asn1:"utf8"`
	Method       string `asn1:"utf8"`
	EnrollmentID string `asn1:"utf8"`
}

func (e Enrollment) extension(oid asn1.ObjectIdentifier) (pkix.Extension, error) {
	der, err := asn1.Marshal(e)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("ca: marshal enrollment extension: %w", err)
	}
	return pkix.Extension{Id: oid, Critical: false, Value: der}, nil
}

// ParseEnrollment reads the enrollment extension with the given OID from
// cert. It reports false when the certificate has none.
func ParseEnrollment(cert *x509.Certificate, oid asn1.ObjectIdentifier) (Enrollment, bool, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oid) {
			continue
		}
		var e Enrollment
		rest, err := asn1.Unmarshal(ext.Value, &e)
		if err != nil {
			return Enrollment{}, true, fmt.Errorf("ca: parse enrollment extension: %w", err)
		}
		if len(rest) != 0 {
			return Enrollment{}, true, fmt.Errorf("ca: trailing data after enrollment extension")
		}
		return e, true, nil
	}
	return Enrollment{}, false, nil
}
