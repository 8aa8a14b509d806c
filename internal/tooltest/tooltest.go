// Package tooltest finds the external programs (openssl, curl) that
// interop tests run. Outside CI a missing program skips the test; with
// CI=true, as .ci/run sets it, it fails it, so CI never silently skips an
// interop test.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of each named program, failing (CI=true) or
// skipping the test when one is missing.
func Require(t testing.TB, names ...string) []string {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required (CI=true forbids skipping): %v", n, err)
			}
			t.Skipf("%s not found; install it to run this test: %v", n, err)
		}
		paths[i] = p
	}
	return paths
}
