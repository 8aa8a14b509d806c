package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/workerca/workerca/internal/errtest"
	"github.com/workerca/workerca/store"
)

// errAny stands for "an error that is none of the sentinels".
var errAny = errtest.Any

func sentinels() []error {
	return []error{store.ErrNotFound, store.ErrTokenUsed, store.ErrTokenExpired,
		store.ErrPoolFull, store.ErrDuplicate, store.ErrSchemaTooNew,
		store.ErrChallengeUnknown, store.ErrChallengeUsed, store.ErrChallengeExpired, store.ErrReplay, store.ErrStale,
		store.ErrRevoked, store.ErrInvalidCursor}
}

// checkErr asserts err matches want: nil, exactly one sentinel, or
// errAny; and that a non-nil error has the "store: " prefix.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	errtest.Check(t, err, want, "store: ", sentinels()...)
}

func timeEq(a, b time.Time) bool { return a.Equal(b) && a.Location() == time.UTC }

func ptrTimeEq(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return timeEq(*a, *b)
}

func assertCertEqual(t *testing.T, got, want *store.Certificate) {
	t.Helper()
	if got.Serial != want.Serial || got.WorkerID != want.WorkerID || got.Pool != want.Pool ||
		got.SPIFFEID != want.SPIFFEID || got.SPKISHA256 != want.SPKISHA256 || got.Method != want.Method ||
		got.EnrollmentID != want.EnrollmentID || got.AttestationSubject != want.AttestationSubject ||
		got.Evidence != want.Evidence || got.ParentSerial != want.ParentSerial || !bytes.Equal(got.DER, want.DER) {
		t.Errorf("certificate = %+v\nwant %+v", got, want)
	}
	if !timeEq(got.NotBefore, want.NotBefore) || !timeEq(got.NotAfter, want.NotAfter) ||
		!timeEq(got.IssuedAt, want.IssuedAt) || !timeEq(got.RetainUntil, want.RetainUntil) ||
		!ptrTimeEq(got.RevokedAt, want.RevokedAt) || !ptrTimeEq(got.InvalidityDate, want.InvalidityDate) {
		t.Errorf("certificate times = %v %v %v %v %v %v\nwant %v %v %v %v %v %v",
			got.NotBefore, got.NotAfter, got.IssuedAt, got.RetainUntil, got.RevokedAt, got.InvalidityDate,
			want.NotBefore, want.NotAfter, want.IssuedAt, want.RetainUntil, want.RevokedAt, want.InvalidityDate)
	}
	if (got.RevocationReason == nil) != (want.RevocationReason == nil) ||
		(got.RevocationReason != nil && *got.RevocationReason != *want.RevocationReason) {
		t.Errorf("revocation reason = %v, want %v", got.RevocationReason, want.RevocationReason)
	}
}
