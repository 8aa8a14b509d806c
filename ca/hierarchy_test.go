package ca_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/ca/catest"
)

func TestHierarchy(t *testing.T) {
	t.Parallel()
	h := catest.NewHierarchy(t, catest.Epoch)
	if !h.Root.IsCA || h.Root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root: IsCA=%v KeyUsage=%v", h.Root.IsCA, h.Root.KeyUsage)
	}
	if !h.Intermediate.IsCA || h.Intermediate.MaxPathLen != 0 || !h.Intermediate.MaxPathLenZero {
		t.Errorf("intermediate path length: %d zero=%v", h.Intermediate.MaxPathLen, h.Intermediate.MaxPathLenZero)
	}
	if h.Intermediate.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("intermediate KeyUsage = %v", h.Intermediate.KeyUsage)
	}
	if err := ca.CheckIntermediate(h.Intermediate, h.Root, h.IntermediateKey.Public(), catest.Epoch); err != nil {
		t.Errorf("CheckIntermediate: %v", err)
	}
	other := catest.NewHierarchy(t, catest.Epoch)
	if err := ca.CheckIntermediate(h.Intermediate, other.Root, h.IntermediateKey.Public(), catest.Epoch); !errors.Is(err, ca.ErrIntermediate) {
		t.Errorf("foreign root: err = %v", err)
	}
	if err := ca.CheckIntermediate(h.Intermediate, h.Root, other.IntermediateKey.Public(), catest.Epoch); !errors.Is(err, ca.ErrIntermediate) {
		t.Errorf("wrong key: err = %v", err)
	}
	if err := ca.CheckIntermediate(h.Root, h.Root, h.RootKey.Public(), catest.Epoch); !errors.Is(err, ca.ErrIntermediate) {
		t.Errorf("root (no path length 0) accepted as intermediate: err = %v", err)
	}
}

func TestIntermediateLifetimeCutAtRoot(t *testing.T) {
	t.Parallel()
	rootKey := catest.Key(t, ca.KeyP256)
	root, err := ca.NewRoot(ca.RootRequest{CommonName: "r", Key: rootKey, Now: catest.Epoch, Lifetime: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ik := catest.Key(t, ca.KeyP256)
	inter, err := ca.NewIntermediate(ca.IntermediateRequest{CommonName: "i", PublicKey: ik.Public(), Root: root, RootKey: rootKey, Now: catest.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	if !inter.NotAfter.Equal(root.NotAfter) {
		t.Fatalf("intermediate NotAfter %s outlives root %s", inter.NotAfter, root.NotAfter)
	}
}

func TestWriteKeyAndLoadSigner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name     string
		password []byte
	}{
		{"ok/plain", nil},
		{"ok/encrypted", []byte("correct horse battery staple")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, "/", "-")+".key")
			key := catest.Key(t, ca.KeyP256)
			if err := ca.WriteKey(path, key, tc.password); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("key mode = %v, want 0600", st.Mode().Perm())
			}
			raw, _ := os.ReadFile(path)
			if tc.password != nil && !strings.Contains(string(raw), "ENCRYPTED PRIVATE KEY") {
				t.Fatalf("key not encrypted:\n%s", raw)
			}
			signer, err := ca.LoadSigner(ctx, path, tc.password)
			if err != nil {
				t.Fatalf("LoadSigner: %v", err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
				t.Fatal("loaded a different key")
			}
			if err := ca.WriteKey(path, key, nil); err == nil {
				t.Fatal("WriteKey overwrote an existing key")
			}
			if tc.password != nil {
				if _, err := ca.LoadSigner(ctx, path, []byte("wrong")); err == nil {
					t.Fatal("wrong password accepted")
				}
			}
		})
	}
	if _, err := ca.LoadSigner(ctx, "nosuchkms:key", nil); err == nil {
		t.Error("unknown kms scheme accepted")
	}
}

func TestKeyTypes(t *testing.T) {
	t.Parallel()
	for _, kt := range ca.DefaultKeyTypes {
		got, err := ca.KeyTypeOf(catest.Key(t, kt).Public())
		if err != nil || got != kt {
			t.Errorf("KeyTypeOf(%s) = %s, %v", kt, got, err)
		}
	}
	for _, weak := range []string{"rsa1024", "p224"} {
		if _, err := ca.KeyTypeOf(catest.WeakKey(t, weak).Public()); !errors.Is(err, ca.ErrKeyNotAllowed) {
			t.Errorf("%s: err = %v", weak, err)
		}
	}
}

func TestParseCertificates(t *testing.T) {
	h := catest.NewHierarchy(t, catest.Epoch)
	bundle := ca.EncodeCertificates(h.Intermediate, h.Root)
	keyBlock := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})
	tests := []struct {
		name string
		in   []byte
		want int
	}{
		{"ok/bundle", bundle, 2},
		{"ok/comments-between-blocks", append(append([]byte("# intermediate\n"), bundle...), "# end\n"...), 2},
		{"fail/empty", nil, 0},
		{"fail/key-in-bundle", append(append([]byte{}, bundle...), keyBlock...), 0},
		{"fail/garbage-certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ca.ParseCertificates(tc.in)
			if tc.want == 0 {
				if err == nil {
					t.Fatalf("parsed %d certificates, want an error", len(got))
				}
				return
			}
			if err != nil || len(got) != tc.want || !got[0].Equal(h.Intermediate) {
				t.Fatalf("got %d certificates, %v; want %d starting with the intermediate", len(got), err, tc.want)
			}
		})
	}
}
