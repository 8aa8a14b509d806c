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
	if o.https == "" {
		return fmt.Errorf("config: listen.https is required")
	}
	httpsLn, err := net.Listen("tcp", o.https)
	if err != nil {
		return fmt.Errorf("listen https: %w", err)
	}
	var httpLn net.Listener
	if o.http != "" {
		if httpLn, err = net.Listen("tcp", o.http); err != nil {
			httpsLn.Close()
			return fmt.Errorf("listen http: %w", err)
		}
	}
	// Certificates name the CRL and OCSP URLs: the configured base, else
	// the listener as bound (dev binds port 0 in tests).
	httpAddr := ""
	if httpLn != nil {
		httpAddr = httpLn.Addr().String()
	}
	in, err := open(ctx, cfg, dir, o.db, log, cfg.publicBase(httpsLn.Addr().String(), httpAddr))
	if err != nil {
		closeListeners(httpsLn, httpLn)
		return err
	}
	defer in.store.Close()
	return in.serve(ctx, log, httpsLn, httpLn, ready)
}

func closeListeners(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			l.Close()
		}
	}
}
