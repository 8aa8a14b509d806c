package apierror_test

import (
	"testing"

	"github.com/workerca/workerca/internal/apierror"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want apierror.Detail
		ok   bool
	}{
		{"ok/error-answer", `{"error":{"code":"token_used","message":"the enrollment token was already used"}}`, apierror.Detail{Code: "token_used", Message: "the enrollment token was already used"}, true},
		{"fail/not-json", `<html>bad gateway</html>`, apierror.Detail{}, false},
		{"fail/no-code", `{"error":{"message":"x"}}`, apierror.Detail{}, false},
		{"fail/other-json", `{"token":"wct_x"}`, apierror.Detail{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := apierror.Parse([]byte(tc.body))
			if got != tc.want || ok != tc.ok {
				t.Errorf("Parse = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
