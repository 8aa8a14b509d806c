package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit/gcpiittest"
)

// TestConfigAttestors: a pool's gcp-iit method and its "gcp" policy go
// together, and the attestor needs public_url.
func TestConfigAttestors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, err := os.ReadFile(gcpiittest.NewProvider(t).WriteJWKSFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "google.json"), keys, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     fileConfig
		wantErr string
		want    int
	}{
		{"ok/token-only", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"token"}}}}, "", 0},
		{"ok/gcp", fileConfig{PublicURL: "https://ca.example.com", Attestation: attestationConfig{GCP: &gcpConfig{JWKSFile: "google.json"}},
			Pools: []poolConfig{{Name: "p", Methods: []string{"gcp-iit"}, GCP: &gcpPoolConfig{Projects: []string{"proj"}, MaxInstanceAge: "10m"}}}}, "", 1},
		{"fail/gcp-method-without-policy", fileConfig{PublicURL: "https://ca.example.com",
			Pools: []poolConfig{{Name: "p", Methods: []string{"gcp-iit"}}}}, `needs its "gcp" policy`, 0},
		{"fail/gcp-policy-without-method", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"token"}, GCP: &gcpPoolConfig{}}}}, "methods lacks gcp-iit", 0},
		{"fail/gcp-without-public-url", fileConfig{Attestation: attestationConfig{GCP: &gcpConfig{JWKSFile: "google.json"}},
			Pools: []poolConfig{{Name: "p", Methods: []string{"gcp-iit"}, GCP: &gcpPoolConfig{}}}}, "public_url", 0},
		{"ok/azure-shipped-roots", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"azure"}, Azure: &azurePoolConfig{Subscriptions: []string{"s"}}}}}, "", 1},
		{"ok/gcp-and-azure", fileConfig{PublicURL: "https://ca.example.com", Attestation: attestationConfig{GCP: &gcpConfig{JWKSFile: "google.json"}},
			Pools: []poolConfig{{Name: "p", Methods: []string{"azure", "gcp-iit"}, Azure: &azurePoolConfig{}, GCP: &gcpPoolConfig{}}}}, "", 2},
		{"fail/azure-method-without-policy", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"azure"}}}}, `needs its "azure" policy`, 0},
		{"fail/azure-roots-file-missing", fileConfig{Attestation: attestationConfig{Azure: &azureConfig{RootsFile: "nope.pem"}},
			Pools: []poolConfig{{Name: "p", Methods: []string{"azure"}, Azure: &azurePoolConfig{}}}}, "roots_file", 0},
		{"ok/aws", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"aws-iid"}, AWS: &awsPoolConfig{Accounts: []string{"111122223333"}, MaxAge: "10m"}}}}, "", 1},
		{"fail/aws-without-accounts", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"aws-iid"}, AWS: &awsPoolConfig{}}}}, "at least one account", 0},
		{"fail/aws-bad-reattest", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"aws-iid"}, AWS: &awsPoolConfig{Accounts: []string{"1"}, Reattest: "sometimes"}}}}, "reattest", 0},
		{"fail/aws-method-without-policy", fileConfig{Pools: []poolConfig{{Name: "p", Methods: []string{"aws-iid"}}}}, `needs its "aws" policy`, 0},
		{"fail/gcp-bad-age", fileConfig{PublicURL: "https://ca.example.com",
			Pools: []poolConfig{{Name: "p", Methods: []string{"gcp-iit"}, GCP: &gcpPoolConfig{MaxInstanceAge: "old"}}}}, "max_instance_age", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.cfg.attestors(dir, time.Now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("attestors = %d, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}
