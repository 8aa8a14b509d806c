// Command mtls-service is a small HTTPS service that accepts workerca
// workers over mTLS and answers "hello <spiffe id>". It shows
// workertls.NewServerConfig in a real program.
//
//	mtls-service --dir /var/lib/mtls-service --allow-pool ci --listen :8444
//
// --dir is the service's own credential directory (key.pem, chain.pem,
// bundle.pem): enroll the service like a worker (a token for pool
// "services", say) and let workerca-agent renew it. Workers connect with
// workertls.NewClientConfig, authorizing the service's SPIFFE ID.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/workerca/workerca/workertls"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

// run parses args, serves until ctx ends and returns the exit code. It
// prints "listening on https://<addr>" once the listener is open.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8444", "HTTPS listen address")
	dir := fs.String("dir", "", "the service's own credential directory: key.pem, chain.pem, bundle.pem (required)")
	bundle := fs.String("bundle", "", "trust roots PEM (default <dir>/bundle.pem, reloaded)")
	trustDomain := fs.String("trust-domain", "", "trust domain of the workers (default the service's own)")
	var pools []string
	fs.Func("allow-pool", "worker pool allowed to connect (repeatable, or comma-separated; required)", func(s string) error {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				pools = append(pools, p)
			}
		}
		return nil
	})
	refresh := fs.Duration("crl-refresh", workertls.DefaultRefreshInterval, "longest time a CRL is used before it is fetched again")
	failOpen := fs.Bool("fail-open", false, "accept workers whose CRL cannot be fetched (default: refuse them)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" || len(pools) == 0 {
		fmt.Fprintln(stderr, "mtls-service: --dir and --allow-pool are required")
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	if err := serve(ctx, options{
		listen: *listen, dir: *dir, bundle: *bundle, trustDomain: *trustDomain,
		pools: pools, refresh: *refresh, failOpen: *failOpen,
	}, logger, stdout); err != nil {
		fmt.Fprintf(stderr, "mtls-service: %v\n", err)
		return 1
	}
	return 0
}

type options struct {
	listen, dir, bundle, trustDomain string
	pools                            []string
	refresh                          time.Duration
	failOpen                         bool
}

func serve(ctx context.Context, o options, logger *slog.Logger, stdout io.Writer) error {
	var td spiffeid.TrustDomain
	if o.trustDomain != "" {
		var err error
		if td, err = spiffeid.TrustDomainFromString(o.trustDomain); err != nil {
			return fmt.Errorf("--trust-domain: %w", err)
		}
	} else {
		// The service is enrolled by the same CA as its workers.
		src, err := workertls.NewSource(ctx, workertls.SourceConfig{Dir: o.dir, Logger: logger})
		if err != nil {
			return err
		}
		self, err := workertls.SVIDID(src.Certificate().Leaf)
		if err != nil {
			return fmt.Errorf("the service's own certificate: %w", err)
		}
		td = self.TrustDomain()
	}
	tc, err := workertls.NewServerConfig(ctx, workertls.ServerConfig{
		Dir: o.dir, BundleFile: o.bundle,
		Authorize:       workertls.AllowPools(td, o.pools...),
		RefreshInterval: o.refresh,
		FailOpen:        o.failOpen,
		Logger:          logger,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		id, err := workertls.PeerID(r)
		if err != nil { // cannot happen: the handshake verified it
			http.Error(w, "no worker identity", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Worker-Certificate-Serial", fmt.Sprintf("%x", r.TLS.PeerCertificates[0].SerialNumber.Bytes()))
		fmt.Fprintf(w, "hello %s\n", id)
	})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: mux, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	fmt.Fprintf(stdout, "listening on https://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
