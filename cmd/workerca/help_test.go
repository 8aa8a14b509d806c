package main

import (
	"strings"
	"testing"
)

// TestHelp checks that --help exits 0 for every command and names its
// flags and subcommands.
func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"init", "intermediate", "serve", "token", "dev", "revoke", "--log-level"}},
		{[]string{"revoke", "--help"}, []string{"--serial", "--worker", "--pool", "--attestation-subject", "--reason", "--invalidity-date",
			"--api-key-file", "--config", "--ca-url", "--root", "keyCompromise"}},
		{[]string{"init", "--help"}, []string{"--dir", "--trust-domain", "--root-cert", "--root-key", "--root-key-password-file",
			"--intermediate-key-password-file", "--offline-root", "--db", "--key-type", "never overwrites"}},
		{[]string{"intermediate", "--help"}, []string{"import"}},
		{[]string{"intermediate", "import", "--help"}, []string{"--dir", "--cert", "--root-cert"}},
		{[]string{"serve", "--help"}, []string{"--config", "--log-level"}},
		{[]string{"token", "--help"}, []string{"create"}},
		{[]string{"token", "create", "--help"}, []string{"--config", "--pool", "--worker", "--ttl", "--json", "--db"}},
		{[]string{"dev", "--help"}, []string{"--dir", "--https-addr", "--http-addr", "--db", "DEV ONLY"}},
		{[]string{"help", "init"}, []string{"--trust-domain"}},
		{[]string{"token", "create", "-h"}, []string{"--pool"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, stdout)
				}
			}
		})
	}
}
