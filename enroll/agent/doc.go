// Package agent is the worker side of workerca enrollment: the library
// behind cmd/workerca-agent. It makes the key on the host, proves the
// host's identity to the CA (a one-time token, or the cloud provider's
// signed identity fetched from its metadata service), writes the key,
// certificate, chain and trust bundle into a directory, and keeps the
// certificate fresh by renewing over mTLS.
//
// On first contact only a root whose SubjectPublicKeyInfo hashes to the
// configured pin is trusted; after that the bundle kept in the directory
// is the trust anchor.
//
//	a, _ := agent.New(agent.Config{CAURL: "https://ca:8443", Pin: "sha256:3f...", Dir: "/var/lib/workerca",
//		Method: agent.MethodToken, TokenFile: "/run/workerca/token"})
//	if _, err := a.Enroll(ctx); err != nil { ... }
//	err := a.Run(ctx) // renews until ctx ends or a permanent failure
//
// Files written (see docs/agent.md): key.pem (0600), cert.pem, chain.pem
// (leaf then intermediates) and bundle.pem (roots), each replaced
// atomically. Readers should load them with LoadCertificate, which
// retries across the short moment in a renewal when cert.pem is new and
// key.pem not yet.
//
// With MethodTPM (a TPM 2.0 on the host) the worker key is made inside
// the TPM, certified by an attestation key (TPM2_Certify), and never
// leaves it: there is no key.pem. key.tpm.json (FileTPMKey) names the key
// instead, and the tpm/ directory (DirTPMStore) holds the TPM-wrapped
// blobs of the key and the AK, useless without that TPM. Each renewal
// makes a new TPM key and deletes the superseded one once the new
// certificate is installed. LoadCertificate then returns a certificate
// whose PrivateKey is a crypto.Signer signing in the TPM, usable for TLS
// and, through artifact.Signer, for artifact signatures. The TPM is
// opened with OpenTPM unless Config.TPM.Open (or WithTPMOpener) says
// otherwise; tests pass an opener over the TPM simulator.
package agent
