package tpmattest

import (
	"crypto"
	"fmt"

	"github.com/google/go-tpm/legacy/tpm2"
	"github.com/smallstep/go-attestation/attest"
	"github.com/workerca/workerca/enroll/tpmwire"
)

// CheckCertify checks that c is TPM2_Certify, signed by ak, of a key that
// is fixedTPM, fixedParent, TPM-generated and not restricted, and that
// the certified key is csrKey. It returns the certified key's TPM name
// (hex).
func (ak *AK) CheckCertify(c tpmwire.Certify, csrKey crypto.PublicKey) (name string, err error) {
	defer recoverTo(&err, ErrKeyNotCertified)
	for _, b := range [][]byte{c.Public, c.Attest, c.Signature} {
		if len(b) == 0 || len(b) > MaxStructure {
			return "", fmt.Errorf("%w: certify: public, attest and signature are required and at most %d bytes", ErrMalformed, MaxStructure)
		}
	}
	pub, err := tpm2.DecodePublic(c.Public)
	if err != nil {
		return "", fmt.Errorf("%w: certified key public area: %v", ErrMalformed, err)
	}
	a := pub.Attributes
	if a&tpm2.FlagFixedTPM == 0 || a&tpm2.FlagFixedParent == 0 || a&tpm2.FlagSensitiveDataOrigin == 0 {
		return "", fmt.Errorf("%w (attributes 0x%08x)", ErrKeyExportable, uint32(a))
	}
	if err := rsaSignature(c.Signature, ak.scheme); err != nil {
		return "", fmt.Errorf("%w: signature: %v", ErrKeyNotCertified, err)
	}
	params := attest.CertificationParameters{Public: c.Public, CreateAttestation: c.Attest, CreateSignature: c.Signature}
	if err := params.Verify(attest.VerifyOpts{Public: ak.Public, Hash: ak.Hash}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrKeyNotCertified, err)
	}
	key, err := pub.Key()
	if err != nil {
		return "", fmt.Errorf("%w: certified key: %v", ErrMalformed, err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := key.(equaler); !ok || !e.Equal(csrKey) {
		return "", ErrKeyMismatch
	}
	name, err = publicName(pub, c.Public)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return name, nil
}
