// Package errtest asserts errors against a package's sentinels: a test
// says which sentinel it wants (or none, or Any), and Check fails it if
// the error matches another one too, or lacks the package's prefix.
package errtest

import (
	"errors"
	"strings"
	"testing"
)

// Any stands for "an error that is none of the sentinels".
var Any = errors.New("errtest: any non-sentinel error")

// Check asserts err matches want: nil; exactly one of sentinels (want,
// and no other); or Any, none of them. A non-nil err must start with
// prefix (e.g. "store: ").
func Check(t testing.TB, err, want error, prefix string, sentinels ...error) {
	t.Helper()
	switch {
	case want == nil:
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	case err == nil:
		t.Fatalf("err = nil, want %v", want)
	case want == Any:
		for _, s := range sentinels {
			if errors.Is(err, s) {
				t.Fatalf("err = %v, want a non-sentinel error", err)
			}
		}
	default:
		if !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
		for _, s := range sentinels {
			if s != want && errors.Is(err, s) {
				t.Fatalf("err = %v also matches %v", err, s)
			}
		}
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q lacks the %q prefix", err, prefix)
	}
}
