package main

import (
	"errors"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// addCPUProfileFlag registers the hidden --cpuprofile flag: for
// measuring workerca itself (docs/benchmarks.md), not for operators.
func addCPUProfileFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "cpuprofile", "", "write a CPU profile (runtime/pprof) to this file until the command ends")
	_ = cmd.Flags().MarkHidden("cpuprofile")
}

// withCPUProfile runs fn under a CPU profile written to path; an empty
// path profiles nothing.
func withCPUProfile(path string, fn func() error) (err error) {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(err, f.Close())
	}
	defer func() {
		pprof.StopCPUProfile()
		err = errors.Join(err, f.Close())
	}()
	return fn()
}
