package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/enroll"
	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/enroll/tpmwire"
)

func tpmCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tpm",
		Short: "Manage the TPM endorsement keys operators registered",
		Long: `A TPM enrolls (method tpm) when its endorsement key's certificate chains to a
configured manufacturer root, or when an operator registered the EK's hash here.
Register TPMs that have no EK certificate, or to give a TPM's worker a name.
The hash is the SHA-256 of the EK public key's PKIX DER: on the host,
"workerca-agent tpm ek" prints it. These commands read the ledger named in the
configuration directly, so they run on the CA host; from elsewhere use
/v1/admin/tpm/eks with an admin API key.`,
	}
	var configPath, db string
	openCA := func(cmd *cobra.Command) (*instance, error) {
		if configPath == "" {
			return nil, usageError{cmd.Name() + " needs --config"}
		}
		cfg, dir, err := loadConfig(configPath)
		if err != nil {
			return nil, err
		}
		return open(cmd.Context(), cfg, dir, db, e.logger(), cfg.publicBase(cfg.Listen.HTTPS, cfg.Listen.HTTP))
	}
	common := func(c *cobra.Command) {
		c.Flags().StringVar(&configPath, "config", "", "path of workerca.json (required)")
		c.Flags().StringVar(&db, "db", "", "override the configured ledger (PostgreSQL URL or SQLite file)")
	}

	var hash, ekFile, pool, worker string
	var asJSON bool
	register := &cobra.Command{
		Use:   "register --config F (--ek-sha256 H | --ek-file F) --pool P [--worker-id W]",
		Short: "Admit a TPM's endorsement key into a pool",
		Long: `register admits the TPM whose EK public key hashes to H into pool P, which must
list method tpm with ek "any" or "registered". Its worker ID is W, or, without
--worker-id, "ek-" and the first 32 hex digits of H. --ek-file reads the EK
certificate or public key (PEM or DER) and computes H. Unregister a TPM with
"workerca tpm unregister"; certificates already issued stay valid until revoked
(subject "tpm:<H>").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (hash == "") == (ekFile == "") || pool == "" {
				return usageError{"tpm register needs --config, one of --ek-sha256 and --ek-file, and --pool"}
			}
			if ekFile != "" {
				h, err := ekFileHash(ekFile)
				if err != nil {
					return err
				}
				hash = h
			}
			in, err := openCA(cmd)
			if err != nil {
				return err
			}
			defer in.store.Close()
			row, err := in.enroll.RegisterTPMEK(cmd.Context(), hash, pool, worker, "cli")
			if err != nil {
				return err
			}
			id := enroll.RegisteredWorkerID(row)
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"ek_sha256": row.EKSHA256, "pool": row.Pool, "worker_id": id})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered EK %s: pool %s, worker %s\n", row.EKSHA256, row.Pool, id)
			return nil
		},
	}
	common(register)
	register.Flags().StringVar(&hash, "ek-sha256", "", "SHA-256 of the EK public key's PKIX DER, 64 hex digits")
	register.Flags().StringVar(&ekFile, "ek-file", "", "EK certificate or public key (PEM or DER) to hash instead of --ek-sha256")
	register.Flags().StringVar(&pool, "pool", "", "pool the TPM enrolls into (required)")
	register.Flags().StringVar(&worker, "worker-id", "", "worker ID its certificates name (default: derived from the EK hash)")
	register.Flags().BoolVar(&asJSON, "json", false, "print {ek_sha256, pool, worker_id} as JSON")

	unregister := &cobra.Command{
		Use:   "unregister --config F --ek-sha256 H",
		Short: "Remove a TPM's registration; its certificates stay valid until revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hash == "" {
				return usageError{"tpm unregister needs --config and --ek-sha256"}
			}
			in, err := openCA(cmd)
			if err != nil {
				return err
			}
			defer in.store.Close()
			if err := in.enroll.UnregisterTPMEK(cmd.Context(), hash, "cli"); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unregistered EK %s\n", hash)
			return nil
		},
	}
	common(unregister)
	unregister.Flags().StringVar(&hash, "ek-sha256", "", "SHA-256 of the EK public key's PKIX DER (required)")

	list := &cobra.Command{
		Use:   "list --config F [--pool P]",
		Short: "List registered endorsement keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := openCA(cmd)
			if err != nil {
				return err
			}
			defer in.store.Close()
			rows, err := in.enroll.TPMEKs(cmd.Context(), pool)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]map[string]any, 0, len(rows))
				for _, r := range rows {
					out = append(out, map[string]any{"ek_sha256": r.EKSHA256, "pool": r.Pool, "worker_id": enroll.RegisteredWorkerID(&r), "created_by": r.CreatedBy, "created_at": r.CreatedAt.UTC()})
				}
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EK SHA-256\tPOOL\tWORKER\tREGISTERED")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.EKSHA256, r.Pool, enroll.RegisteredWorkerID(&r), r.CreatedAt.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	common(list)
	list.Flags().StringVar(&pool, "pool", "", "only this pool's registrations")
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")

	cmd.AddCommand(register, unregister, list)
	return cmd
}

// ekFileHash reads an EK certificate or public key, PEM or DER, and
// returns its tpmwire.EKSHA256.
func ekFileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	der := b
	if block, _ := pem.Decode(b); block != nil {
		der = block.Bytes
	}
	if c, err := tpmattest.ParseEKCertificate(der); err == nil {
		return tpmwire.EKSHA256(c.Cert.PublicKey)
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		return tpmwire.EKSHA256(pub)
	}
	return "", errors.New(path + ": neither an EK certificate nor a PKIX public key (PEM or DER)")
}
