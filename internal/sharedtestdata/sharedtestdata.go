// Package sharedtestdata finds the real attestation evidence that lives
// beside the repository, in ../shared/testdata/attestation (signed by AWS,
// Azure, Google and TPM makers; never copied into this repository).
//
//	dir := sharedtestdata.Attestation(t) // skips, or fails under CI=true
//	doc, _ := os.ReadFile(filepath.Join(dir, "aws-iid", "...", "document"))
//
// A clone without the folder skips these tests with a message saying so;
// under CI=true (CI always has the folder) a missing folder is a failure.
package sharedtestdata

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir overrides where the attestation folder is looked for.
const EnvDir = "WORKERCA_ATTESTATION_TESTDATA"

// Attestation returns the absolute path of the shared attestation folder.
func Attestation(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv(EnvDir); d != "" {
		return mustDir(tb, d)
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("sharedtestdata: %v", err)
	}
	// Walk up to the module root (the directory holding go.mod), then
	// look beside it.
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return mustDir(tb, filepath.Join(filepath.Dir(d), "shared", "testdata", "attestation"))
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	missing(tb, "no go.mod above "+wd)
	return ""
}

func mustDir(tb testing.TB, d string) string {
	tb.Helper()
	fi, err := os.Stat(d)
	if err != nil || !fi.IsDir() {
		missing(tb, d+" is not a directory")
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		tb.Fatalf("sharedtestdata: %v", err)
	}
	return abs
}

func missing(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("sharedtestdata: the shared attestation evidence is required in CI: %s (set %s)", why, EnvDir)
	}
	tb.Skipf("sharedtestdata: shared attestation evidence not found (%s); set %s or put ../shared beside the repository", why, EnvDir)
}

// Certificates reads every CERTIFICATE of a PEM file in the shared data
// (an empty file gives none), failing the test on anything unreadable.
func Certificates(tb testing.TB, path string) []*x509.Certificate {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return out
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
}
