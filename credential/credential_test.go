package credential_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/workerca/workerca/credential"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kind := range []credential.Kind{credential.APIKey, credential.EnrollmentToken} {
		c, err := credential.New(kind, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s := c.String()
		if !strings.HasPrefix(s, string(kind)+"_"+c.ID+"_") {
			t.Fatalf("String() = %q", s)
		}
		p, err := credential.Parse(kind, s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if p.ID != c.ID || !p.Matches(c.Hash()) {
			t.Fatal("parsed credential does not match its own hash")
		}
		if strings.Contains(c.Hash(), strings.Split(s, "_")[2]) {
			t.Fatal("hash contains the secret")
		}
		if m := credential.Masked(kind, c.ID); strings.Contains(m, strings.Split(s, "_")[2]) {
			t.Fatal("masked form shows the secret")
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	good, _ := credential.New(credential.APIKey, rand.Reader)
	other, _ := credential.New(credential.APIKey, rand.Reader)
	s := good.String()
	malformed := []struct{ name, in string }{
		{"fail/empty", ""},
		{"fail/wrong-kind", "wct" + s[3:]},
		{"fail/no-secret", "wca_" + good.ID},
		{"fail/short-secret", s[:len(s)-1]},
		{"fail/uppercase", strings.ToUpper(s[:4]) + s[4:]},
		{"fail/non-hex", s[:len(s)-1] + "z"},
		{"fail/extra-part", s + "_x"},
	}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := credential.Parse(credential.APIKey, tc.in); !errors.Is(err, credential.ErrMalformed) {
				t.Fatalf("Parse(%q) err = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
	t.Run("fail/other-secret", func(t *testing.T) {
		t.Parallel()
		if good.Matches(other.Hash()) {
			t.Fatal("secret matched another credential's hash")
		}
	})
	t.Run("fail/garbage-hash", func(t *testing.T) {
		t.Parallel()
		if good.Matches("not-hex") || good.Matches("") {
			t.Fatal("matched a malformed hash")
		}
	})
}
