package revocation_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/workerca/workerca/revocation"
	"github.com/workerca/workerca/store"
	"github.com/workerca/workerca/store/storetest"
)

// verifyStatus verifies a status JWS with the service's published JWKS
// and returns its payload, after checking the protected header: ES256
// (the P-256 status key), typ, and a kid naming the JWKS key.
func verifyStatus(t *testing.T, svc *revocation.Service, jws string) (*revocation.Status, map[string]any) {
	t.Helper()
	jwks := svc.StatusKeys()
	if len(jwks.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(jwks.Keys))
	}
	key := jwks.Keys[0]
	if !key.IsPublic() || !key.Valid() || key.Algorithm != string(jose.ES256) || key.Use != "sig" {
		t.Fatalf("JWKS key: public %v valid %v alg %s use %s", key.IsPublic(), key.Valid(), key.Algorithm, key.Use)
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil || key.KeyID != base64.RawURLEncoding.EncodeToString(thumb) {
		t.Fatalf("JWKS kid %q is not the key's RFC 7638 thumbprint (%v)", key.KeyID, err)
	}
	if strings.Count(jws, ".") != 2 {
		t.Fatalf("not a compact JWS: %q", jws)
	}
	if _, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA}); err == nil {
		t.Fatal("a status JWS parsed with ES256 not allowed")
	}
	obj, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	if len(obj.Signatures) != 1 {
		t.Fatalf("%d signatures", len(obj.Signatures))
	}
	hdr := obj.Signatures[0].Protected
	if hdr.Algorithm != string(jose.ES256) || hdr.KeyID != key.KeyID || hdr.ExtraHeaders[jose.HeaderType] != revocation.StatusMediaType || hdr.JSONWebKey != nil {
		t.Fatalf("protected header: alg %s kid %q typ %v jwk %v; want ES256, %q, %s, none", hdr.Algorithm, hdr.KeyID, hdr.ExtraHeaders[jose.HeaderType], hdr.JSONWebKey, key.KeyID, revocation.StatusMediaType)
	}
	payload, err := obj.Verify(key)
	if err != nil {
		t.Fatalf("Verify with the JWKS key: %v", err)
	}
	var st revocation.Status
	var raw map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	return &st, raw
}

// TestStatus asks for the status of certificates now and at past
// instants, checks the answer and verifies its signature.
func TestStatus(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		ctx := context.Background()
		h := newHarness(t, st)
		t0 := h.clock.Now()
		good := h.enroll(t, "build", "w-good")
		superseded := h.enroll(t, "build", "w-superseded")
		compromised := h.enroll(t, "build", "w-compromised")
		invalidity := t0.Add(5 * time.Minute)
		h.clock.Set(t0.Add(20 * time.Minute))
		revokedAt := h.clock.Now()
		for _, req := range []revocation.Request{
			{Serial: superseded.serial, Reason: revocation.Superseded},
			{Serial: compromised.serial, Reason: revocation.KeyCompromise, InvalidityDate: &invalidity},
		} {
			if _, err := h.svc.Revoke(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		notBefore, notAfter := good.cert.NotBefore, good.cert.NotAfter
		now := t0.Add(30 * time.Minute)
		expiredNow := notAfter.Add(time.Hour)
		at := func(t time.Time) *time.Time { return &t }

		type want struct {
			status         string
			revokedAt      *time.Time
			reason         string
			invalidityDate *time.Time
		}
		revokedSuperseded := want{revocation.StatusRevoked, &revokedAt, "superseded", nil}
		revokedCompromised := want{revocation.StatusRevoked, &revokedAt, "keyCompromise", &invalidity}
		for _, tc := range []struct {
			name   string
			now    time.Time
			serial string
			at     *time.Time
			want   want
		}{
			{"ok/good-now", now, good.serial, nil, want{status: revocation.StatusGood}},
			{"ok/good-at-not-before", now, good.serial, at(notBefore), want{status: revocation.StatusGood}},
			{"ok/not-yet-valid-before-not-before", now, good.serial, at(notBefore.Add(-time.Second)), want{status: revocation.StatusNotYetValid}},
			{"ok/revoked-now", now, superseded.serial, nil, revokedSuperseded},
			{"ok/revoked-at-the-revocation", now, superseded.serial, at(revokedAt), revokedSuperseded},
			{"ok/good-just-before-the-revocation", now, superseded.serial, at(revokedAt.Add(-time.Second)), want{status: revocation.StatusGood}},
			{"ok/good-before-the-revocation", now, superseded.serial, at(t0.Add(10 * time.Minute)), want{status: revocation.StatusGood}},
			{"ok/key-compromise-revoked-now", now, compromised.serial, nil, revokedCompromised},
			{"ok/key-compromise-revoked-from-the-invalidity-date", now, compromised.serial, at(invalidity), revokedCompromised},
			{"ok/key-compromise-revoked-between-invalidity-and-revocation", now, compromised.serial, at(t0.Add(10 * time.Minute)), revokedCompromised},
			{"ok/key-compromise-good-before-the-invalidity-date", now, compromised.serial, at(invalidity.Add(-time.Second)), want{status: revocation.StatusGood}},
			{"ok/uppercase-serial", now, strings.ToUpper(good.serial), nil, want{status: revocation.StatusGood}},
			{"ok/unknown-serial", now, "0123456789abcdef", nil, want{status: revocation.StatusUnknown}},
			{"ok/unknown-serial-in-the-past", now, "0123456789abcdef", at(t0), want{status: revocation.StatusUnknown}},
			{"ok/at-now", now, good.serial, at(now), want{status: revocation.StatusGood}},
			// later: the certificates have expired
			{"ok/good-at-not-after", expiredNow, good.serial, at(notAfter), want{status: revocation.StatusGood}},
			{"ok/expired-after-not-after", expiredNow, good.serial, at(notAfter.Add(time.Second)), want{status: revocation.StatusExpired}},
			{"ok/expired-now", expiredNow, good.serial, nil, want{status: revocation.StatusExpired}},
			{"ok/expired-keeps-its-revocation", expiredNow, superseded.serial, nil, want{revocation.StatusExpired, &revokedAt, "superseded", nil}},
			{"ok/revoked-in-the-past-after-expiry", expiredNow, compromised.serial, at(revokedAt), revokedCompromised},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.clock.Set(tc.now)
				jws, got, err := h.svc.Status(ctx, tc.serial, tc.at)
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
				signed, raw := verifyStatus(t, h.svc, jws)
				if !reflect.DeepEqual(signed, got) {
					t.Fatalf("signed payload %+v differs from the returned %+v", signed, got)
				}
				wantAt := tc.now
				if tc.at != nil {
					wantAt = *tc.at
				}
				if got.Serial != strings.ToLower(tc.serial) || !got.At.Equal(wantAt) ||
					!got.ThisUpdate.Equal(tc.now) || !got.NextUpdate.Equal(tc.now.Add(testOCSPValidity)) {
					t.Errorf("serial %s at %v this %v next %v; want %s at %v this %v next %v", got.Serial, got.At, got.ThisUpdate, got.NextUpdate,
						strings.ToLower(tc.serial), wantAt, tc.now, tc.now.Add(testOCSPValidity))
				}
				eqTime := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
				if got.Status != tc.want.status || got.Reason != tc.want.reason ||
					!eqTime(got.RevokedAt, tc.want.revokedAt) || !eqTime(got.InvalidityDate, tc.want.invalidityDate) {
					t.Errorf("status %s revoked_at %v reason %q invalidity_date %v; want %+v", got.Status, got.RevokedAt, got.Reason, got.InvalidityDate, tc.want)
				}
				keys := slices.Sorted(maps.Keys(raw))
				wantKeys := []string{"at", "next_update", "serial", "status", "this_update"}
				if tc.want.revokedAt != nil {
					wantKeys = append(wantKeys, "reason", "revoked_at")
				}
				if tc.want.invalidityDate != nil {
					wantKeys = append(wantKeys, "invalidity_date")
				}
				if slices.Sort(wantKeys); !slices.Equal(keys, wantKeys) {
					t.Errorf("payload members %v, want %v", keys, wantKeys)
				}
			})
		}

		h.clock.Set(now)
		for _, tc := range []struct {
			name   string
			serial string
			at     *time.Time
			want   error
		}{
			{"fail/at-in-the-future", good.serial, at(now.Add(time.Second)), revocation.ErrInvalidRequest},
			{"fail/at-far-in-the-future", good.serial, at(now.AddDate(1, 0, 0)), revocation.ErrInvalidRequest},
			{"fail/serial-not-hex", "zz", nil, revocation.ErrInvalidRequest},
			{"fail/serial-empty", "", nil, revocation.ErrInvalidRequest},
			{"fail/serial-41-digits", "1" + strings.Repeat("0", 40), nil, revocation.ErrInvalidRequest},
			{"fail/serial-zero", "0", nil, revocation.ErrInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				jws, got, err := h.svc.Status(ctx, tc.serial, tc.at)
				if !errors.Is(err, tc.want) || jws != "" || got != nil {
					t.Fatalf("Status: %q, %v, %v; want %v", jws, got, err, tc.want)
				}
			})
		}
	})
}

// TestStatusKeys checks that another service's key does not verify a
// status answer: the JWKS names the one key that signs.
func TestStatusKeys(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		h := newHarness(t, st)
		w := h.enroll(t, "build", "w-keys")
		jws, _, err := h.svc.Status(context.Background(), w.serial, nil)
		if err != nil {
			t.Fatal(err)
		}
		other := newHarness(t, st) // same ledger, its own status key
		obj, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Verify(other.svc.StatusKeys().Keys[0]); err == nil {
			t.Fatal("a status answer verified with another service's key")
		}
		if other.svc.StatusKeys().Keys[0].KeyID == h.svc.StatusKeys().Keys[0].KeyID {
			t.Fatal("two status keys with one kid")
		}
		// A tampered payload does not verify.
		parts := strings.Split(jws, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		forged := strings.Replace(string(payload), `"status":"good"`, `"status":"revoked"`, 1)
		if forged == string(payload) {
			t.Fatalf("payload %s has no good status", payload)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
		obj, err = jose.ParseSigned(strings.Join(parts, "."), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Verify(h.svc.StatusKeys().Keys[0]); err == nil {
			t.Fatal("a tampered status answer verified")
		}
	})
}
