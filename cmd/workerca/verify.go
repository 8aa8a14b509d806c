package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"
	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/verifier"
)

// Exit statuses of `workerca verify` besides 0 (accepted) and 2 (a
// usageError).
const (
	exitRejected  = 1
	exitUndecided = 3
)

const verifyExitCodes = `Exit status: 0 accepted, 1 rejected, 2 usage error, 3 could not decide (the
status server unreachable or its answer untrusted, no fresh CRL for the
certificate, a file that cannot be read). Never treat 3 as acceptance.`

const verifyRevocationHelp = `Revocation is checked with the CA's signed status (--status-url) or its CRLs
(--crl, one file per shard, DER or PEM); one of them is required unless
--no-revocation-check is given, and then every result says revocation
"not_checked". Status answers are verified with the CA's status keys: give
--status-keys (the JSON that GET /v1/status/keys serves, saved once and
pinned), or use an https --status-url and they are fetched from it, the TLS
certificate verified with --bundle. Over plain http --status-keys is
required: keys fetched over plain HTTP prove nothing.`

// verifyOptions are the flags of `verify cert` and `verify artifact`.
type verifyOptions struct {
	bundle, intermediates, statusURL, statusKeys, trustDomain string
	crls, allowPools                                          []string
	noRevocationCheck, asJSON                                 bool
	at                                                        string // cert
	file, sig, receipt                                        string // artifact
}

func verifyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a worker certificate or an artifact signature against the trust bundle and revocation status",
		Long: `verify checks what a relying party receives from a worker: a certificate chain
(verify cert) or an artifact signature with its CA receipt (verify artifact).
It checks the chain to --bundle, the SPIFFE ID spiffe://<trust-domain>/worker/<pool>/<id>,
the pool and trust domain allowed, and the revocation status at the instant
that matters: now, --at, or the receipt's registered_at for an artifact.

` + verifyRevocationHelp + `

` + verifyExitCodes,
	}
	cmd.AddCommand(verifyCertCmd(e), verifyArtifactCmd(e))
	return cmd
}

func addVerifyFlags(cmd *cobra.Command, o *verifyOptions) {
	f := cmd.Flags()
	f.StringVar(&o.bundle, "bundle", "", "PEM trust bundle: the CA's root.crt or GET /v1/bundle (required)")
	f.StringVar(&o.intermediates, "intermediates", "", "PEM file of extra intermediates (GET /v1/intermediates)")
	f.StringVar(&o.statusURL, "status-url", "", "the CA's base URL for GET /v1/status/<serial> (https://ca:8443, or the plain http listener)")
	f.StringArrayVar(&o.crls, "crl", nil, "CRL file (DER or PEM) instead of --status-url; repeat for several shards")
	f.BoolVar(&o.noRevocationCheck, "no-revocation-check", false, "do not check revocation (the result says so)")
	f.StringVar(&o.statusKeys, "status-keys", "", "JWKS file of the CA's status keys (GET /v1/status/keys), pinned")
	f.StringArrayVar(&o.allowPools, "allow-pool", nil, "accept only this pool; repeat for several (default: any)")
	f.StringVar(&o.trustDomain, "trust-domain", "", "accept only this SPIFFE trust domain")
	f.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
}

func verifyCertCmd(e *env) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "cert LEAF --bundle ROOTS [--at T] (--status-url U | --crl F... | --no-revocation-check) [flags]",
		Short: "Check a worker certificate chain (PEM, leaf first) now or at --at",
		Long: `cert checks the worker certificate in LEAF, a PEM file holding the certificate
and optionally its intermediates, leaf first (what enrollment returns). With
--at (RFC 3339, not in the future) it checks the chain and the revocation
status at that instant instead of now.

` + verifyRevocationHelp + `

--json prints {accepted, code, message, serial, spiffe_id, pool, worker_id, at,
at_source, revocation, revoked_at, reason, invalidity_date}; docs/artifacts.md
lists the codes.

` + verifyExitCodes,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{"verify cert needs exactly one LEAF file"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runVerify(cmd, o, args[0]) },
	}
	addVerifyFlags(cmd, &o)
	cmd.Flags().StringVar(&o.at, "at", "", "RFC 3339 instant to check at (default now)")
	return cmd
}

func verifyArtifactCmd(e *env) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "artifact --file F --sig F.jws --bundle ROOTS [--receipt R] (--status-url U | --crl F... | --no-revocation-check) [flags]",
		Short: "Check an artifact's signature, its receipt and the signer's certificate at signing time",
		Long: `artifact checks that --sig (a workerca artifact signature, compact JWS) is over
the SHA-256 of --file and verifies with its x5c leaf key; with --receipt (the CA's
receipt from POST /v1/artifacts: the compact JWS, or the whole JSON answer) that
the CA's status key signed it for this artifact, certificate and signature and
that the registration has not expired; then the x5c chain as 'verify cert' does,
at the receipt's registered_at, or now without a receipt.

A certificate revoked after the signing time is accepted, except for
keyCompromise: with no invalidity date, or one at or before the signing time,
it is rejected (key_compromised).

` + verifyRevocationHelp + `

A --receipt needs the status keys too. CRLs cannot vouch for a certificate that
expired before they were issued (workerca drops such entries), so old
signatures are checked with --status-url.

` + verifyExitCodes,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usageError{fmt.Sprintf("verify artifact takes no arguments; give --file and --sig (got %q)", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, o, "") },
	}
	addVerifyFlags(cmd, &o)
	f := cmd.Flags()
	f.StringVar(&o.file, "file", "", "the artifact (required)")
	f.StringVar(&o.sig, "sig", "", "its signature, a compact JWS file (required)")
	f.StringVar(&o.receipt, "receipt", "", "the CA's receipt of the signature's registration")
	return cmd
}

// undecided is exit status 3 with err printed.
func undecided(err error) error { return exitError{code: exitUndecided, err: err} }

// runVerify runs verify cert (leaf set) or verify artifact.
func runVerify(cmd *cobra.Command, o verifyOptions, leaf string) error {
	ctx := cmd.Context()
	if err := o.check(leaf != ""); err != nil {
		return err
	}
	var at time.Time
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return usageError{fmt.Sprintf("--at %q is not an RFC 3339 time", o.at)}
		}
		if t.After(time.Now()) {
			return usageError{fmt.Sprintf("--at %s is in the future", o.at)}
		}
		at = t
	}

	roots, err := readRoots(o.bundle)
	if err != nil {
		return undecided(fmt.Errorf("--bundle: %w", err))
	}
	client := &http.Client{Timeout: verifier.DefaultHTTPTimeout, Transport: newTransport(roots, 0, verifier.DefaultHTTPTimeout)}
	cfg := verifier.Config{Roots: roots, AllowPools: o.allowPools, TrustDomain: o.trustDomain, NoRevocationCheck: o.noRevocationCheck}
	if o.intermediates != "" {
		if cfg.Intermediates, err = ca.ReadCertificates(o.intermediates); err != nil {
			return undecided(fmt.Errorf("--intermediates: %w", err))
		}
	}
	for _, path := range o.crls {
		crl, err := readCRL(path)
		if err != nil {
			return undecided(fmt.Errorf("--crl: %w", err))
		}
		cfg.CRLs = append(cfg.CRLs, crl)
	}
	if o.statusKeys != "" || o.statusURL != "" {
		if cfg.StatusKeys, err = o.loadStatusKeys(cmd, client); err != nil {
			return err
		}
	}
	if o.statusURL != "" {
		if cfg.Status, err = verifier.NewHTTPStatus(o.statusURL, client, cfg.StatusKeys); err != nil {
			return usageError{fmt.Sprintf("--status-url: %v", err)}
		}
	}
	v, err := verifier.New(cfg)
	if err != nil {
		return usageError{err.Error()}
	}

	var res *verifier.Result
	if leaf != "" {
		chain, err := ca.ReadCertificates(leaf)
		if err != nil {
			return undecided(err)
		}
		res, err = v.Certificate(ctx, verifier.CertRequest{Chain: chain, At: at})
		if err != nil {
			return undecided(err)
		}
	} else {
		digest, err := artifact.DigestFile(o.file)
		if err != nil {
			return undecided(fmt.Errorf("--file: %w", err))
		}
		sig, err := os.ReadFile(o.sig)
		if err != nil {
			return undecided(fmt.Errorf("--sig: %w", err))
		}
		var receipt string
		if o.receipt != "" {
			if receipt, err = readReceipt(o.receipt); err != nil {
				return undecided(fmt.Errorf("--receipt: %w", err))
			}
		}
		res, err = v.Artifact(ctx, verifier.ArtifactRequest{Digest: digest, Signature: string(sig), Receipt: receipt})
		if err != nil {
			return undecided(err)
		}
	}
	if err := printResult(cmd.OutOrStdout(), res, o.asJSON); err != nil {
		return undecided(err)
	}
	if !res.Accepted {
		return exitError{code: exitRejected}
	}
	return nil
}

// check refuses wrong combinations of flags.
func (o verifyOptions) check(cert bool) error {
	if o.bundle == "" {
		return usageError{"verify needs --bundle (the CA's root.crt)"}
	}
	if !cert && (o.file == "" || o.sig == "") {
		return usageError{"verify artifact needs --file and --sig"}
	}
	sources := 0
	for _, set := range []bool{o.statusURL != "", len(o.crls) > 0, o.noRevocationCheck} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return usageError{"give exactly one of --status-url, --crl and --no-revocation-check: revocation is checked unless you say otherwise"}
	}
	if o.statusURL != "" {
		u, err := url.Parse(o.statusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError{fmt.Sprintf("--status-url %q: want https://host:port (or http:// with --status-keys)", o.statusURL)}
		}
		if u.Scheme == "http" && o.statusKeys == "" {
			return usageError{"--status-url is plain http: give --status-keys too (the pinned JWKS of GET /v1/status/keys); " +
				"keys fetched over plain HTTP prove nothing, anyone on the path could swap them"}
		}
	}
	if o.receipt != "" && o.statusKeys == "" && !strings.HasPrefix(o.statusURL, "https://") {
		return usageError{"--receipt needs the CA's status keys: give --status-keys, or an https --status-url to fetch them from"}
	}
	return nil
}

// loadStatusKeys reads --status-keys, or fetches the keys over verified
// HTTPS from --status-url.
func (o verifyOptions) loadStatusKeys(cmd *cobra.Command, client *http.Client) (jose.JSONWebKeySet, error) {
	if o.statusKeys != "" {
		b, err := os.ReadFile(o.statusKeys)
		if err != nil {
			return jose.JSONWebKeySet{}, undecided(fmt.Errorf("--status-keys: %w", err))
		}
		keys, err := verifier.ParseStatusKeys(b)
		if err != nil {
			return jose.JSONWebKeySet{}, undecided(fmt.Errorf("--status-keys %s: %w", o.statusKeys, err))
		}
		return keys, nil
	}
	keys, err := verifier.FetchStatusKeys(cmd.Context(), o.statusURL, client)
	if err != nil {
		return jose.JSONWebKeySet{}, undecided(fmt.Errorf("fetching the status keys: %w", err))
	}
	return keys, nil
}

// readCRL reads a CRL file, DER or PEM ("X509 CRL").
func readCRL(path string) (*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(b); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: PEM block %q, want X509 CRL", path, block.Type)
		}
		b = block.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return crl, nil
}

// readReceipt reads a receipt file: the compact JWS, or the JSON answer
// of POST /v1/artifacts holding it in "receipt".
func readReceipt(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b = bytes.TrimSpace(b)
	if !bytes.HasPrefix(b, []byte("{")) {
		return string(b), nil
	}
	var reg struct {
		Receipt string `json:"receipt"`
	}
	if err := json.Unmarshal(b, &reg); err != nil || reg.Receipt == "" {
		return "", errors.New(path + ": JSON without a \"receipt\"")
	}
	return reg.Receipt, nil
}

// printResult writes res as one JSON object, or as a short summary.
func printResult(w io.Writer, res *verifier.Result, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(res)
	}
	var b strings.Builder
	verdict := "ACCEPTED"
	if !res.Accepted {
		verdict = "REJECTED"
	}
	fmt.Fprintf(&b, "%s %s: %s\n", verdict, res.Code, res.Message)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %-12s %s\n", k+":", v)
		}
	}
	if res.SHA256 != "" {
		line("artifact", strings.TrimSpace(res.SHA256+" "+res.Name))
	}
	line("spiffe id", res.SPIFFEID)
	line("serial", res.Serial)
	line("checked at", res.At.UTC().Format(time.RFC3339)+" ("+res.AtSource+")")
	if res.RegistrationExpiresAt != nil {
		line("registered", res.RegisteredAt.UTC().Format(time.RFC3339)+", until "+res.RegistrationExpiresAt.UTC().Format(time.RFC3339))
	}
	rev := res.Revocation
	switch {
	case res.Revocation == verifier.RevocationRevoked && res.RevokedAt != nil:
		rev += fmt.Sprintf(" at %s (%s)", res.RevokedAt.UTC().Format(time.RFC3339), res.Reason)
		if res.InvalidityDate != nil {
			rev += ", key compromised since " + res.InvalidityDate.UTC().Format(time.RFC3339)
		}
	case res.Revocation == verifier.RevocationNotChecked && res.Accepted:
		rev += " (--no-revocation-check: revocation was NOT checked)"
	}
	line("revocation", rev)
	_, err := io.WriteString(w, b.String())
	return err
}
