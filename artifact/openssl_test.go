package artifact_test

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/workerca/workerca/artifact"
	"github.com/workerca/workerca/ca"
	"github.com/workerca/workerca/internal/tooltest"
)

// TestOpenSSLScript checks an artifact signature of every key type with
// scripts/verify-artifact-openssl.sh, the openssl-only procedure
// docs/artifacts.md gives release engineers: another JWS implementation
// accepts what we sign, and refuses a changed file or a foreign root.
func TestOpenSSLScript(t *testing.T) {
	t.Parallel()
	tooltest.Require(t, "openssl", "bash", "xxd", "basenc")
	script, err := filepath.Abs("../scripts/verify-artifact-openssl.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []ca.KeyType{ca.KeyP256, ca.KeyP384, ca.KeyEd25519, ca.KeyRSA} {
		t.Run(string(kt), func(t *testing.T) {
			t.Parallel()
			w := newWorker(t, kt)
			dir := t.TempDir()
			write := func(name string, b []byte) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, b, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			file := write("app.bin", []byte("build output"))
			jws, err := artifact.SignFile(file, w.signer(), "app.bin")
			if err != nil {
				t.Fatal(err)
			}
			sig := write("app.bin.jws", []byte(jws+"\n"))
			roots := write("root.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.h.Root.Raw}))
			other := newWorker(t, ca.KeyP256)
			otherRoots := write("other.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.h.Root.Raw}))
			changed := write("changed.bin", []byte("build outpuT"))
			at := strconv.FormatInt(w.chain[0].NotBefore.Add(time.Minute).Unix(), 10)

			run := func(args ...string) (string, error) {
				out, err := exec.Command("bash", append([]string{script}, args...)...).CombinedOutput()
				return string(out), err
			}
			out, err := run(file, sig, roots, at)
			if err != nil || !strings.Contains(out, "Verified OK") && !strings.Contains(out, "Signature Verified Successfully") || !strings.Contains(out, ": OK") {
				t.Fatalf("ok/signed-file: %v\n%s", err, out)
			}
			if out, err := run(changed, sig, roots, at); err == nil || !strings.Contains(out, "digest mismatch") {
				t.Errorf("fail/changed-file: %v\n%s", err, out)
			}
			if out, err := run(file, sig, otherRoots, at); err == nil {
				t.Errorf("fail/foreign-root: accepted\n%s", out)
			}
			// A signature over another payload with this header: the
			// digest matches the forged payload, the signature does not.
			parts := strings.Split(jws, ".")
			forgedPayload := strings.Split(mustSignOther(t, w, changed), ".")[1]
			forged := write("forged.jws", []byte(parts[0]+"."+forgedPayload+"."+parts[2]))
			if out, err := run(changed, forged, roots, at); err == nil {
				t.Errorf("fail/forged-payload: accepted\n%s", out)
			}
		})
	}
}

func mustSignOther(t *testing.T, w worker, path string) string {
	t.Helper()
	jws, err := artifact.SignFile(path, w.signer(), "")
	if err != nil {
		t.Fatal(err)
	}
	return jws
}
