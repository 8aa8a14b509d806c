package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

type revokeOptions struct {
	configPath, caURL, rootFile, keyFile string
	serial, worker, pool, subject        string
	reason, invalidity                   string
}

func revokeCmd(e *env) *cobra.Command {
	var o revokeOptions
	cmd := &cobra.Command{
		Use:   "revoke (--serial S | --worker W | --pool P | --attestation-subject A) --reason R --api-key-file F",
		Short: "Revoke one certificate, a worker's, a pool's or an attested instance's",
		Long: `revoke asks the running CA (POST /v1/admin/revocations, over HTTPS) to revoke, so that
its OCSP answers and CRLs change at once. It needs an API key of scope revoke (or
admin) in --api-key-file. With --config it reaches the CA at listen.https and trusts
root_cert; otherwise give --ca-url and --root.

--worker, --pool and --attestation-subject revoke every certificate still valid at
the invalidity date (or now). Reasons (RFC 5280): unspecified, keyCompromise,
affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
--invalidity-date (RFC 3339) is when the key is known or suspected to have been
compromised. Revocation is final and idempotent: a second revocation changes nothing.
The answer (revoked and already revoked serials) is printed as JSON.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRevoke(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.configPath, "config", "", "workerca.json: the CA URL and root come from it")
	f.StringVar(&o.caURL, "ca-url", "", "the CA's HTTPS URL (https://ca.example.com:8443)")
	f.StringVar(&o.rootFile, "root", "", "PEM root to trust for the CA's HTTPS certificate")
	f.StringVar(&o.keyFile, "api-key-file", "", "file holding an API key with scope revoke (required)")
	f.StringVar(&o.serial, "serial", "", "serial (hex) of one certificate")
	f.StringVar(&o.worker, "worker", "", "worker ID: all its certificates")
	f.StringVar(&o.pool, "pool", "", "pool: all its certificates")
	f.StringVar(&o.subject, "attestation-subject", "", "attestation subject (aws:<account>:<instance-id>, ...): all its certificates")
	f.StringVar(&o.reason, "reason", "unspecified", "RFC 5280 reason name")
	f.StringVar(&o.invalidity, "invalidity-date", "", "RFC 3339 time the key was compromised")
	return cmd
}

func runRevoke(cmd *cobra.Command, o revokeOptions) error {
	if o.keyFile == "" {
		return usageError{"revoke needs --api-key-file"}
	}
	n := 0
	for _, v := range []string{o.serial, o.worker, o.pool, o.subject} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return usageError{"give exactly one of --serial, --worker, --pool and --attestation-subject"}
	}
	if o.configPath != "" {
		cfg, dir, err := loadConfig(o.configPath)
		if err != nil {
			return err
		}
		if o.caURL == "" {
			o.caURL = "https://" + cfg.Listen.HTTPS
		}
		if o.rootFile == "" {
			o.rootFile = resolve(dir, cfg.RootCert)
		}
	}
	if o.caURL == "" || o.rootFile == "" {
		return usageError{"revoke needs --config, or --ca-url and --root"}
	}
	body := map[string]any{"reason": o.reason}
	for k, v := range map[string]string{"serial": o.serial, "worker_id": o.worker, "pool": o.pool, "attestation_subject": o.subject} {
		if v != "" {
			body[k] = v
		}
	}
	if o.invalidity != "" {
		t, err := time.Parse(time.RFC3339, o.invalidity)
		if err != nil {
			return usageError{fmt.Sprintf("--invalidity-date %q is not an RFC 3339 time", o.invalidity)}
		}
		body["invalidity_date"] = t
	}
	api, err := newAPIClient(apiClientConfig{URL: o.caURL, RootFile: o.rootFile, KeyFile: o.keyFile})
	if err != nil {
		return err
	}
	out, err := api.postJSON(cmd.Context(), "/v1/admin/revocations", body)
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
