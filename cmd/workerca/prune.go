package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/retention"
)

func pruneCmd(e *env) *cobra.Command {
	var configPath, db string
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune --config F [--dry-run] [--json]",
		Short: "Delete ledger history past its retention, now",
		Long: `prune runs one retention pass, the one a running server makes every
retention.prune_interval: it deletes artifact registrations past their expires_at,
certificates past their retain_until (max(notAfter + retention.safety_buffer, the
latest expires_at of an artifact they signed); a revoked certificate stays until its
shard's CRL was issued after its notAfter), and expired enrollment challenges
and TPM sessions.
Deletes go in batches of retention.prune_batch rows, each its own transaction.

It takes the same lock as the servers, so it waits for no one: if a replica is
pruning now it says so and exits 1. --dry-run counts what would go and deletes
nothing. It reads the ledger named in the configuration directly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usageError{"prune needs --config"}
			}
			cfg, dir, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			in, err := open(cmd.Context(), cfg, dir, db, e.logger(), cfg.publicBase(cfg.Listen.HTTPS, cfg.Listen.HTTP))
			if err != nil {
				return err
			}
			defer in.store.Close()
			res, err := in.pruner.Once(cmd.Context(), dryRun, "cli")
			if errors.Is(err, retention.ErrLocked) {
				return errors.New("another workerca is pruning this ledger now; nothing was deleted, try again later")
			}
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"dry_run": dryRun, "certificates": res.Certificates, "artifacts": res.Artifacts,
					"challenges": res.Challenges, "tpm_sessions": res.TPMSessions, "batches": res.Batches,
				})
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d certificates, %d artifact registrations, %d challenges, %d TPM sessions (%d batches)\n",
				verb, res.Certificates, res.Artifacts, res.Challenges, res.TPMSessions, res.Batches)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "path of workerca.json (required)")
	f.StringVar(&db, "db", "", "override the configured ledger (PostgreSQL URL or SQLite file)")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be deleted; delete nothing")
	f.BoolVar(&asJSON, "json", false, "print {dry_run, certificates, artifacts, challenges, tpm_sessions, batches} as JSON")
	return cmd
}
