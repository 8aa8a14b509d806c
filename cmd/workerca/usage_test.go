package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors checks that wrong invocations exit 2 with a message on
// stderr and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"fail/unknown-command", []string{"bogus"}, `unknown command "bogus"`},
		{"fail/revoke-without-key", []string{"revoke", "--serial", "01"}, "revoke needs --api-key-file"},
		{"fail/revoke-two-selectors", []string{"revoke", "--api-key-file", "k", "--serial", "01", "--pool", "p"}, "exactly one of --serial"},
		{"fail/revoke-no-selector", []string{"revoke", "--api-key-file", "k"}, "exactly one of --serial"},
		{"fail/revoke-without-ca", []string{"revoke", "--api-key-file", "k", "--serial", "01"}, "--ca-url and --root"},
		{"fail/revoke-bad-invalidity-date", []string{"revoke", "--api-key-file", "k", "--serial", "01", "--ca-url", "https://x", "--root", "r", "--invalidity-date", "yesterday"}, "not an RFC 3339 time"},
		{"fail/unknown-flag", []string{"init", "--bogus"}, "unknown flag: --bogus"},
		{"fail/unknown-persistent-flag", []string{"--bogus", "serve"}, "unknown flag: --bogus"},
		{"fail/log-level-unknown", []string{"--log-level", "loud", "serve", "--config", "x.json"}, `--log-level "loud"`},
		{"fail/init-without-flags", []string{"init"}, "init needs --dir and --trust-domain"},
		{"fail/init-without-trust-domain", []string{"init", "--dir", dir}, "init needs --dir and --trust-domain"},
		{"fail/init-positional-argument", []string{"init", "extra"}, `unknown command "extra"`},
		{"fail/init-bad-trust-domain", []string{"init", "--dir", dir, "--trust-domain", "Not A Domain"}, "--trust-domain"},
		{"fail/init-unknown-key-type", []string{"init", "--dir", dir, "--trust-domain", testTrustDomain, "--key-type", "P-999"}, `"P-999"`},
		{"fail/init-root-cert-without-root-key", []string{"init", "--dir", dir, "--trust-domain", testTrustDomain, "--root-cert", "root.crt"}, "--root-cert and --root-key go together"},
		{"fail/init-root-key-without-root-cert", []string{"init", "--dir", dir, "--trust-domain", testTrustDomain, "--root-key", "root.key"}, "--root-cert and --root-key go together"},
		{"fail/init-offline-root-with-root-cert", []string{"init", "--dir", dir, "--trust-domain", testTrustDomain, "--offline-root", "--root-cert", "r.crt", "--root-key", "r.key"}, "exclude each other"},
		{"fail/init-flag-without-value", []string{"init", "--dir"}, "flag needs an argument"},
		{"fail/serve-without-config", []string{"serve"}, "serve needs --config"},
		{"fail/dev-flag-without-value", []string{"dev", "--https-addr"}, "flag needs an argument"},
		{"fail/token-create-without-flags", []string{"token", "create"}, "token create needs --config, --pool and --worker"},
		{"fail/token-create-without-worker", []string{"token", "create", "--config", "x.json", "--pool", "default"}, "token create needs --config, --pool and --worker"},
		{"fail/token-create-bad-ttl", []string{"token", "create", "--ttl", "soon"}, `invalid argument "soon"`},
		{"fail/token-create-bad-json-flag", []string{"token", "create", "--json=maybe"}, `invalid argument "maybe"`},
		{"fail/import-without-flags", []string{"intermediate", "import"}, "import needs --dir, --cert and --root-cert"},
		{"fail/import-without-root-cert", []string{"intermediate", "import", "--dir", dir, "--cert", "c.crt"}, "import needs --dir, --cert and --root-cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cli(t, tt.args...)
			if code != 2 {
				t.Errorf("workerca %s: exit %d, want 2\nstderr: %s", strings.Join(tt.args, " "), code, stderr)
			}
			if !strings.HasPrefix(stderr, "workerca: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want \"workerca: ...%s...\"", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	// No wrong invocation created a CA.
	for _, f := range []string{fileConfigName, fileIntKey, fileRootCert} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a wrong invocation wrote %s", f)
		}
	}
}

// TestRuntimeErrorsExitOne checks that failures which are not wrong
// invocations exit 1, whatever words the error happens to contain.
func TestRuntimeErrorsExitOne(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail/config-missing", []string{"serve", "--config", filepath.Join(base, "missing.json")}, "no such file"},
		{"fail/config-missing-in-dir-named-flags", []string{"serve", "--config", filepath.Join(base, "flags", "workerca.json")}, "no such file"},
		{"fail/token-config-missing", []string{"token", "create", "--config", filepath.Join(base, "unknown command", "w.json"), "--pool", "p", "--worker", "w"}, "no such file"},
		{"fail/import-into-missing-dir", []string{"intermediate", "import", "--dir", filepath.Join(base, "none"), "--cert", "c", "--root-cert", "r"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := cli(t, tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Errorf("workerca %s: exit %d, stderr %q; want 1 and %q", strings.Join(tt.args, " "), code, stderr, tt.want)
			}
		})
	}
}

// TestConfigDecodedStrictly checks that serve and token create refuse a
// configuration with unknown keys or bad values, naming the problem.
func TestConfigDecodedStrictly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	mustCLI(t, "init", "--dir", dir, "--trust-domain", testTrustDomain)
	good := filepath.Join(dir, fileConfigName)
	// Should a case wrongly start serving, it does so on a free port.
	editConfig(t, good, func(cfg map[string]any) { cfg["listen"] = map[string]any{"https": "127.0.0.1:0"} })
	tests := []struct {
		name string
		edit func(cfg map[string]any)
		raw  string // appended to the file after edit
		want string
	}{
		{name: "fail/unknown-top-level-key", edit: func(c map[string]any) { c["trust_domian"] = "typo.example.com" }, want: `unknown field "trust_domian"`},
		{name: "fail/unknown-pool-key", edit: func(c map[string]any) { c["pools"].([]any)[0].(map[string]any)["ttl_seconds"] = 60 }, want: `unknown field "ttl_seconds"`},
		{name: "fail/unknown-database-key", edit: func(c map[string]any) { c["database"].(map[string]any)["password"] = "x" }, want: `unknown field "password"`},
		{name: "fail/data-after-object", raw: "{}\n", want: "data after the JSON object"},
		{name: "fail/duration-not-a-string-duration", edit: func(c map[string]any) { c["pools"].([]any)[0].(map[string]any)["ttl"] = "1 day" }, want: `is not a duration like`},
		{name: "fail/no-pools", edit: func(c map[string]any) { c["pools"] = []any{} }, want: "at least one pool"},
		{name: "fail/retention-buffer-not-a-duration", edit: func(c map[string]any) { c["retention"] = map[string]any{"safety_buffer": "3 days"} }, want: "retention.safety_buffer"},
		{name: "fail/retention-negative-buffer", edit: func(c map[string]any) { c["retention"] = map[string]any{"safety_buffer": "-1h"} }, want: "must not be negative"},
		{name: "fail/prune-interval-too-short", edit: func(c map[string]any) { c["retention"] = map[string]any{"prune_interval": "1ms"} }, want: "prune_interval must be at least 1s"},
		{name: "fail/prune-batch-too-large", edit: func(c map[string]any) { c["retention"] = map[string]any{"prune_batch": 1000000} }, want: "prune_batch"},
		{name: "fail/unknown-retention-key", edit: func(c map[string]any) { c["retention"] = map[string]any{"keep": "1y"} }, want: `unknown field "keep"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Beside the original, so relative paths still resolve.
			path := filepath.Join(dir, "case"+string(rune('a'+i))+".json")
			b, err := os.ReadFile(good)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.edit != nil {
				editConfig(t, path, tt.edit)
			}
			if tt.raw != "" {
				f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(tt.raw); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			for _, args := range [][]string{
				{"serve", "--config", path},
				{"token", "create", "--config", path, "--pool", "default", "--worker", "host-01"},
				{"prune", "--config", path, "--dry-run"},
			} {
				code, stdout, stderr := cli(t, args...)
				if code != 1 || !strings.Contains(stderr, tt.want) {
					t.Errorf("%s: exit %d, stderr %q; want 1 and %q", args[0], code, stderr, tt.want)
				}
				if strings.Contains(stdout, "wct_") {
					t.Errorf("%s printed a token from a refused configuration", args[0])
				}
			}
		})
	}
	// The unedited configuration is fine: the refusals above are the edits'.
	if code, _, stderr := cli(t, "token", "create", "--config", good, "--pool", "default", "--worker", "host-01"); code != 0 {
		t.Fatalf("token create with the configuration init wrote: exit %d\n%s", code, stderr)
	}
}
