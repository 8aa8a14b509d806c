package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"
)

func serveCmd(e *env) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config F",
		Short: "Run the CA server from a configuration file",
		Long: `serve runs the HTTPS listener (every route; its certificate is issued by the
intermediate at start and renewed before expiry) and, when listen.http is set, a
plain HTTP listener for the public read-only routes. SIGTERM or SIGINT shuts down
gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usageError{"serve needs --config"}
			}
			cfg, dir, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			return serveInstance(cmd.Context(), e, cfg, dir, serveOptions{https: cfg.Listen.HTTPS, http: cfg.Listen.HTTP}, nil)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "path of workerca.json (required)")
	return cmd
}

type serveOptions struct {
	https, http, db string
}

func serveInstance(ctx context.Context, e *env, cfg *fileConfig, dir string, o serveOptions, ready func(https, http net.Addr)) error {
	log := e.logger()
	in, err := open(ctx, cfg, dir, o.db, log)
	if err != nil {
		return err
	}
	defer in.store.Close()
	if o.https == "" {
		return fmt.Errorf("config: listen.https is required")
	}
	return in.serve(ctx, log, o.https, o.http, ready)
}
