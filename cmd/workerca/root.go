package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// env is what every command gets: output streams and the logger.
type env struct {
	stdout, stderr io.Writer
	logLevel       string
}

func (e *env) logger() *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(e.logLevel))
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// run is main without the exit: it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	root := rootCmd(e)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var xe exitError
		if errors.As(err, &xe) {
			if xe.err != nil {
				fmt.Fprintln(stderr, "workerca:", xe.err)
			}
			return xe.code
		}
		fmt.Fprintln(stderr, "workerca:", err)
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			return 2
		}
		return 1
	}
	return 0
}

// rootCmd is the workerca command tree.
func rootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "workerca",
		Short:         "A certificate authority for fleets of worker machines",
		Long:          "workerca issues short-lived X.509 worker certificates after a machine proves who it is,\nand records every certificate in its ledger before returning it.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(e.logLevel)); err != nil {
				return usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", e.logLevel)}
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	// Flag parsing errors are wrong invocations (exit 2), told apart by
	// type, not by the words of the message.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(initCmd(e), intermediateCmd(e), serveCmd(e), devCmd(e), tokenCmd(e), tpmCmd(e), revokeCmd(e), pruneCmd(e), benchCmd(e))
	root.AddCommand(verifyCmd(e))
	return root
}

// usageError marks a wrong invocation (exit status 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// exitError ends a command with its own exit status (verify: 1 rejected,
// 3 could not decide); err, if any, is printed.
type exitError struct {
	code int
	err  error
}

func (x exitError) Error() string {
	if x.err != nil {
		return x.err.Error()
	}
	return fmt.Sprintf("exit status %d", x.code)
}

func (x exitError) Unwrap() error { return x.err }
