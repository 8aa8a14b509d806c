package ocsp_test

import (
	"errors"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/workerca/workerca/revocation/ocsp"
)

// TestErrorResponse has x/crypto/ocsp parse every error response: it must
// come back as a ResponseError carrying the status.
func TestErrorResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status ocsp.ResponseStatus
		want   xocsp.ResponseStatus
	}{
		{name: "ok/malformed-request", status: ocsp.MalformedRequest, want: xocsp.Malformed},
		{name: "ok/internal-error", status: ocsp.InternalError, want: xocsp.InternalError},
		{name: "ok/try-later", status: ocsp.TryLater, want: xocsp.TryLater},
		{name: "ok/sig-required", status: ocsp.SigRequired, want: xocsp.SignatureRequired},
		{name: "ok/unauthorized", status: ocsp.Unauthorized, want: xocsp.Unauthorized},
		{name: "ok/successful-becomes-internal-error", status: 0, want: xocsp.InternalError},
		{name: "ok/unused-4-becomes-internal-error", status: 4, want: xocsp.InternalError},
		{name: "ok/out-of-range-becomes-internal-error", status: 256 + 1, want: xocsp.InternalError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := xocsp.ParseResponse(ocsp.ErrorResponse(tt.status), nil)
			var re xocsp.ResponseError
			if !errors.As(err, &re) || re.Status != tt.want {
				t.Fatalf("ParseResponse error = %v, want ResponseError{%v}", err, tt.want)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
	}{
		{ocsp.Good.String(), "good"},
		{ocsp.Revoked.String(), "revoked"},
		{ocsp.Unknown.String(), "unknown"},
		{ocsp.Status(0).String(), "Status(0)"},
		{ocsp.MalformedRequest.String(), "malformedRequest"},
		{ocsp.Unauthorized.String(), "unauthorized"},
		{ocsp.ResponseStatus(4).String(), "ResponseStatus(4)"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}
