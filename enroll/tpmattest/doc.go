// Package tpmattest verifies TPM 2.0 enrollment evidence on the CA's side:
// the endorsement key (EK) certificate's chain to TPM manufacturer roots,
// the attestation key (AK) and its creation attestation, TPM2_Certify of
// the worker key by the AK, and the credential (TPM2_MakeCredential to the
// EK for the AK's name) whose activation proves the AK and the EK share a
// TPM.
//
// What each check stops:
//
//   - EK chain (or an operator-registered EK hash): a software "TPM" that
//     makes up its own endorsement key.
//   - AK restricted, signing, fixedTPM, fixedParent, created in the TPM
//     (its TPM2_CertifyCreation signed by itself): a key that could sign
//     forged attestations, or one that can leave the TPM.
//   - Credential activation: an AK from one TPM presented with the EK of
//     another. Only the TPM holding the EK's private key, with the AK
//     loaded, releases the secret.
//   - TPM2_Certify by the AK, key fixedTPM and fixedParent, key equal to
//     the CSR's: a worker key that was generated outside the TPM or can be
//     exported from it.
//
// The parsing and signature checks of the TPM structures are
// github.com/smallstep/go-attestation's; this package adds explicit
// attribute checks with their own errors, bounds input sizes, and turns
// any panic from a decoder into an error.
package tpmattest
