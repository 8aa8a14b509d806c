// Package crlscope reads the scope of a CRL: its issuingDistributionPoint
// extension (RFC 5280 §5.2.5), so that relying parties (package verifier,
// package workertls) can tell whether a CRL covers a certificate. It
// depends on nothing heavier than golang.org/x/crypto/cryptobyte.
package crlscope

import (
	"encoding/asn1"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OID is the issuingDistributionPoint extension's OID (RFC 5280 §5.2.5).
var OID = asn1.ObjectIdentifier{2, 5, 29, 28}

// IDP is what a relying party needs of a CRL's IssuingDistributionPoint
// (RFC 5280 §5.2.5) to decide whether the CRL covers a certificate.
type IDP struct {
	// HasName says the IDP names a distribution point; URIs are its
	// uniformResourceIdentifier names.
	HasName bool
	URIs    []string
	// Partial: onlyContainsCACerts, onlySomeReasons, indirectCRL or
	// onlyContainsAttributeCerts; such a CRL is not the complete
	// end-entity CRL workerca publishes.
	Partial bool
}

// Parse reads
//
//	IssuingDistributionPoint ::= SEQUENCE {
//	     distributionPoint          [0] DistributionPointName OPTIONAL,
//	     onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE,
//	     onlyContainsCACerts        [2] BOOLEAN DEFAULT FALSE,
//	     onlySomeReasons            [3] ReasonFlags OPTIONAL,
//	     indirectCRL                [4] BOOLEAN DEFAULT FALSE,
//	     onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
//	DistributionPointName ::= CHOICE { fullName [0] GeneralNames, nameRelativeToCRLIssuer [1] ... }
//
// (implicit tags; the tag on the DistributionPointName CHOICE is
// explicit). A nameRelativeToCRLIssuer is an error: workerca never
// writes one.
func Parse(der []byte) (*IDP, error) {
	malformed := errors.New("crlscope: malformed issuingDistributionPoint")
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, malformed
	}
	out := &IDP{}
	var dp cryptobyte.String
	if !seq.ReadOptionalASN1(&dp, &out.HasName, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, malformed
	}
	if out.HasName {
		var names cryptobyte.String
		if !dp.ReadASN1(&names, cbasn1.Tag(0).ContextSpecific().Constructed()) || !dp.Empty() {
			return nil, malformed
		}
		for !names.Empty() {
			var gn cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&gn, &tag) {
				return nil, malformed
			}
			if tag == cbasn1.Tag(6).ContextSpecific() {
				out.URIs = append(out.URIs, string(gn))
			}
		}
	}
	for tag := cbasn1.Tag(1); tag <= 5; tag++ {
		var v cryptobyte.String
		var present bool
		if !seq.ReadOptionalASN1(&v, &present, tag.ContextSpecific()) {
			return nil, malformed
		}
		if !present {
			continue
		}
		if tag == 3 {
			out.Partial = true
			continue
		}
		if len(v) != 1 {
			return nil, malformed
		}
		if v[0] != 0 && tag != 1 {
			out.Partial = true
		}
	}
	if !seq.Empty() {
		return nil, malformed
	}
	return out, nil
}
