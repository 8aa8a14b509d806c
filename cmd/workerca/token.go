package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/workerca/workerca/enroll"
)

func tokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage one-time enrollment tokens"}
	var configPath, pool, worker, db string
	var ttl time.Duration
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --config F --pool P --worker W [--ttl 1h]",
		Short: "Mint a one-time enrollment token bound to a pool and worker ID",
		Long: `create writes the token's hash to the ledger and prints the token once.
It reads the ledger named in the configuration directly, so it runs on the CA host;
from elsewhere use POST /v1/admin/tokens with an API key of scope tokens:create.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" || pool == "" || worker == "" {
				return usageError{"token create needs --config, --pool and --worker"}
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
			tok, err := in.enroll.CreateToken(cmd.Context(), enroll.TokenRequest{Pool: pool, WorkerID: worker, TTL: ttl, CreatedBy: "cli"})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"token": tok.Value, "id": tok.ID, "expires_at": tok.ExpiresAt.UTC()})
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Value)
			fmt.Fprintf(cmd.ErrOrStderr(), "token for %s/%s, single use, expires %s\n", pool, worker, tok.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&configPath, "config", "", "path of workerca.json (required)")
	f.StringVar(&pool, "pool", "", "pool the token enrolls into (required)")
	f.StringVar(&worker, "worker", "", "worker ID the certificate will name (required)")
	f.DurationVar(&ttl, "ttl", enroll.DefaultTokenTTL, "time until the token expires (at most 168h)")
	f.StringVar(&db, "db", "", "override the configured ledger (PostgreSQL URL or SQLite file)")
	f.BoolVar(&asJSON, "json", false, "print {token, id, expires_at} as JSON")
	cmd.AddCommand(create)
	return cmd
}
