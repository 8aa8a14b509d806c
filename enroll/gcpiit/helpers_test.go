package gcpiit_test

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerca/workerca/enroll/gcpiit"
	"github.com/workerca/workerca/internal/errtest"
)

// epoch is the fixed instant the stand-in tests pin their clocks to.
var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// errAny stands for "an error that is none of the sentinels".
var errAny = errtest.Any

func sentinels() []error {
	return []error{gcpiit.ErrMalformed, gcpiit.ErrSignature, gcpiit.ErrKeysUnavailable,
		gcpiit.ErrIssuer, gcpiit.ErrAudience, gcpiit.ErrExpired, gcpiit.ErrProjectNotAllowed,
		gcpiit.ErrInstanceTooOld, gcpiit.ErrNotComputeEngine}
}

// checkErr asserts err matches want: nil, exactly one sentinel, or
// errAny; and that a non-nil error has the "gcpiit: " prefix.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	errtest.Check(t, err, want, "gcpiit: ", sentinels()...)
}

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// changeByte decodes part i (0 header, 1 payload, 2 signature) of a
// compact JWS, flips the low bit of its middle byte, and re-encodes it
// canonically: the token differs in exactly one byte of that part.
func changeByte(t *testing.T, tok string, i int) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	b[len(b)/2] ^= 0x01
	parts[i] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// respell writes tok differently without changing what it decodes to,
// which go-jose alone accepts: "trailing-bit" sets an unused low bit in
// the signature's last base64url digit; "newline" puts a line break in
// the payload.
func respell(t *testing.T, tok, how string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	parts := strings.Split(tok, ".")
	switch how {
	case "trailing-bit": // 256-byte signature: 342 digits, 4 unused bits
		sig := parts[2]
		i := strings.IndexByte(alphabet, sig[len(sig)-1])
		parts[2] = sig[:len(sig)-1] + string(alphabet[i^1])
	case "newline":
		parts[1] = parts[1][:10] + "\n" + parts[1][10:]
	default:
		t.Fatalf("respell %q", how)
	}
	return strings.Join(parts, ".")
}
