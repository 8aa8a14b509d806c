// Command workerca-agent is the worker side of workerca: it enrolls the
// host (a one-time token, or the cloud provider's signed identity), keeps
// the key and certificate in a directory, and renews them. See
// docs/agent.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
