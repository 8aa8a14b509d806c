package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/agent"
	"github.com/workerca/workerca/internal/devca"
	"github.com/workerca/workerca/internal/syncbuf"
)

// workercaBin is the workerca server binary, built once by TestMain.
var workercaBin string

func TestMain(m *testing.M) { os.Exit(devca.Main(m, &workercaBin)) }

// waitFor polls cond every 20ms and fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cli runs the agent in-process until it returns or ctx ends.
func cli(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out bytes.Buffer
	var errOut syncbuf.Buffer
	code = run(ctx, append([]string{"workerca-agent"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliTPM runs the agent in-process with the TPM opened by open.
func cliTPM(t *testing.T, open agent.TPMOpener, args ...string) (code int, stdout, stderr string) {
	var out, errOut syncbuf.Buffer
	code = runWith(t.Context(), append([]string{"workerca-agent"}, args...), streams{&out, &errOut}, open)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/unknown-flag", []string{"enroll", "--bogus"}, "unknown flag"},
		{"fail/unknown-command", []string{"renew-now"}, "unknown command"},
		{"fail/missing-ca", []string{"enroll", "--out", "d", "--method", "token"}, "--ca and --out are required"},
		{"fail/missing-method", []string{"enroll", "--ca", "https://ca", "--out", "d"}, "--method is required"},
		{"fail/unknown-method", []string{"enroll", "--ca", "https://ca", "--out", "d", "--method", "sgx"}, "unknown method"},
		{"fail/tpm-key-type", []string{"enroll", "--ca", "https://ca", "--out", "d", "--method", "tpm", "--key-type", "p384"}, "P-256"},
		{"fail/token-without-file", []string{"enroll", "--ca", "https://ca", "--out", "d", "--method", "token"}, "token file"},
		{"fail/bad-pin", []string{"enroll", "--ca", "https://ca", "--out", "d", "--method", "aws-iid", "--ca-pin", "abc"}, "sha256:<64 hex digits>"},
		{"fail/plain-http", []string{"run", "--ca", "http://ca", "--out", "d"}, "must be https"},
		{"fail/hook-and-signal", []string{"run", "--ca", "https://ca", "--out", "d", "--on-renew", "true", "--signal-pid", "1"}, "exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := cli(t.Context(), tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestEnrollAndRun(t *testing.T) {
	t.Parallel()
	ca := devca.Start(t, workercaBin, nil)
	pin := agent.SPKIPin(ca.Root)

	t.Run("fail/wrong-pin-exits-1", func(t *testing.T) {
		tok := ca.Token(t, "cli-pin")
		dir := filepath.Join(t.TempDir(), "w")
		code, _, stderr := cli(t.Context(), "enroll", "--ca", ca.URL, "--out", dir, "--method", "token", "--token-file", tok,
			"--ca-pin", "sha256:"+strings.Repeat("00", 32))
		if code != exitFailure || !strings.Contains(stderr, "matches the pin") || !strings.Contains(stderr, "nothing was sent") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		if code, out, stderr := cli(t.Context(), "enroll", "--ca", ca.URL, "--out", dir, "--method", "token", "--token-file", tok, "--ca-pin", pin); code != exitOK {
			t.Fatalf("the right pin after a wrong one: exit %d\n%s%s", code, out, stderr)
		}
	})

	t.Run("ok/enroll", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "w")
		code, stdout, stderr := cli(t.Context(), "enroll", "--ca", ca.URL, "--out", dir, "--method", "token",
			"--token-file", ca.Token(t, "cli-01"), "--ca-pin", pin)
		if code != exitOK || !strings.Contains(stdout, "spiffe://dev.workerca.test/worker/default/cli-01") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		for _, f := range []string{agent.FileKey, agent.FileCert, agent.FileChain, agent.FileBundle} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("ok/run-enrolls-and-runs-hook", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "w")
		mark := filepath.Join(t.TempDir(), "renewed")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var (
			wg     sync.WaitGroup
			code   int
			stderr string
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, stderr = cli(ctx, "run", "--ca", ca.URL, "--out", dir, "--method", "token",
				"--token-file", ca.Token(t, "cli-02"), "--ca-pin", pin, "--on-renew", `cp "$WORKERCA_AGENT_DIR/cert.pem" `+mark)
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(mark); err == nil && len(b) > 0 {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				wg.Wait()
				t.Fatalf("--on-renew never ran; exit %d\n%s", code, stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel() // SIGTERM
		wg.Wait()
		if code != exitOK {
			t.Fatalf("run stopped by its context: exit %d\n%s", code, stderr)
		}
	})

	// Run sends SIGHUP to --signal-pid after each new certificate, the
	// first enrollment included: a real process counts what it receives.
	t.Run("ok/run-signals-pid", func(t *testing.T) {
		tmp := t.TempDir()
		got, ready := filepath.Join(tmp, "hups"), filepath.Join(tmp, "ready")
		child := exec.Command("sh", "-c", `trap 'echo hup >> "$F"' HUP; : > "$R"; while :; do sleep 0.05; done`)
		child.Env = append(os.Environ(), "F="+got, "R="+ready)
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- child.Wait() }()
		defer func() {
			_ = child.Process.Kill()
			<-exited
		}()
		waitFor(t, 10*time.Second, "the child's HUP trap", func() bool {
			_, err := os.Stat(ready)
			return err == nil
		})

		ctx, cancel := context.WithCancel(t.Context())
		var (
			wg     sync.WaitGroup
			code   int
			stderr string
		)
		defer func() { cancel(); wg.Wait() }()
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, stderr = cli(ctx, "run", "--ca", ca.URL, "--out", filepath.Join(tmp, "w"), "--method", "token",
				"--token-file", ca.Token(t, "cli-hup"), "--ca-pin", pin, "--signal-pid", strconv.Itoa(child.Process.Pid))
		}()
		waitFor(t, 20*time.Second, "SIGHUP after the enrollment", func() bool {
			b, _ := os.ReadFile(got)
			return string(b) == "hup\n"
		})
		cancel()
		wg.Wait()
		if code != exitOK {
			t.Fatalf("run stopped by its context: exit %d\n%s", code, stderr)
		}
		select {
		case err := <-exited:
			t.Fatalf("the signalled process exited: %v", err)
		default:
		}
		if b, _ := os.ReadFile(got); string(b) != "hup\n" {
			t.Errorf("the process got %q, want one hup", b)
		}
	})

	t.Run("fail/run-with-used-token-exits-1", func(t *testing.T) {
		tok := ca.Token(t, "cli-03")
		if code, _, stderr := cli(t.Context(), "enroll", "--ca", ca.URL, "--out", filepath.Join(t.TempDir(), "a"), "--method", "token", "--token-file", tok, "--ca-pin", pin); code != 0 {
			t.Fatal(stderr)
		}
		code, _, stderr := cli(t.Context(), "run", "--ca", ca.URL, "--out", filepath.Join(t.TempDir(), "b"), "--method", "token", "--token-file", tok, "--ca-pin", pin)
		if code != exitFailure || !strings.Contains(stderr, "token_used") || !strings.Contains(stderr, "workerca token create") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
	})
}
