//go:build tpmsimulator

package tpmattest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/workerca/workerca/enroll/tpmattest"
	"github.com/workerca/workerca/enroll/tpmwire"
	"github.com/workerca/workerca/internal/tpmtest"
)

// flip returns b with bits flipped in its objectAttributes (a TPMT_PUBLIC
// starts with type and nameAlg, two bytes each).
func flip(b []byte, bits uint32) []byte {
	out := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(out[4:8], binary.BigEndian.Uint32(out[4:8])^bits)
	return out
}

// TestCheckWithSimulator runs the AK, certification and credential checks
// on real TPM output and shows each refusal's error.
func TestCheckWithSimulator(t *testing.T) {
	d := tpmtest.OpenDevice(t)
	ak := d.NewAK(t, "ak")
	key := d.NewKey(t, ak, "k")
	akw, cw := d.AKWire(t, ak), d.CertifyWire(t, key)

	got, err := tpmattest.CheckAK(akw)
	if err != nil {
		t.Fatalf("CheckAK(honest) = %v", err)
	}
	if len(got.Name) != 68 || got.Name[:4] != "000b" {
		t.Errorf("AK name %q, want 000b and a SHA-256", got.Name)
	}
	if _, err := got.CheckCertify(cw, key.Public()); err != nil {
		t.Fatalf("CheckCertify(honest) = %v", err)
	}
	secret, cred, err := got.MakeCredential(d.EK.Public(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := d.Activate(t, ak, cred); err != nil || string(back) != string(secret) {
		t.Fatalf("the TPM activated %x, %v; want %x", back, err, secret)
	}

	soft, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other := d.CertifyWire(t, d.NewKey(t, d.NewAK(t, "ak2"), "k2"))
	forged := d.AKWire(t, d.NewAK(t, "ak3"))
	// Last: it stays loaded, and the simulator has few object slots.
	exportable, _ := d.ExportableKey(t, ak)
	for _, c := range []struct {
		name string
		ak   tpmwire.AK
		cert tpmwire.Certify
		key  any
		want error
	}{
		{"ak-not-restricted", withAKPublic(akw, flip(akw.Public, 1<<16)), cw, key.Public(), tpmattest.ErrAKNotRestricted},
		{"ak-decrypt", withAKPublic(akw, flip(akw.Public, 1<<17)), cw, key.Public(), tpmattest.ErrAKNotRestricted},
		{"ak-not-fixedtpm", withAKPublic(akw, flip(akw.Public, 1<<1)), cw, key.Public(), tpmattest.ErrAKNotFixed},
		{"ak-not-fixedparent", withAKPublic(akw, flip(akw.Public, 1<<4)), cw, key.Public(), tpmattest.ErrAKNotFixed},
		{"ak-not-tpm-generated", withAKPublic(akw, flip(akw.Public, 1<<5)), cw, key.Public(), tpmattest.ErrAKNotFixed},
		{"ak-empty", tpmwire.AK{}, cw, key.Public(), tpmattest.ErrMalformed},
		{"csr-key-software", akw, cw, soft.Public(), tpmattest.ErrKeyMismatch},
		{"key-exportable", akw, exportable, key.Public(), tpmattest.ErrKeyExportable},
		{"key-by-other-ak", akw, other, key.Public(), tpmattest.ErrKeyNotCertified},
		{"key-attrs-edited", akw, tpmwire.Certify{Public: flip(cw.Public, 1<<1), Attest: cw.Attest, Signature: cw.Signature}, key.Public(), tpmattest.ErrKeyExportable},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := tpmattest.CheckAK(c.ak)
			if err == nil {
				_, err = a.CheckCertify(c.cert, c.key)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}

	// The AK's creation attestation is checked when the credential is
	// made: another AK's creation data with this public area is refused.
	forged.Public = akw.Public
	if a, err := tpmattest.CheckAK(forged); err != nil {
		t.Fatalf("CheckAK only reads the public area; got %v", err)
	} else if _, _, err := a.MakeCredential(d.EK.Public(), rand.Reader); !errors.Is(err, tpmattest.ErrAKInvalid) {
		t.Fatalf("MakeCredential(forged creation) = %v, want ErrAKInvalid", err)
	}
}

func withAKPublic(a tpmwire.AK, pub []byte) tpmwire.AK {
	a.Public = pub
	return a
}

// TestMutatedEvidenceRefused changes every byte of real TPM evidence and
// truncates it at every length: nothing panics and nothing is accepted.
func TestMutatedEvidenceRefused(t *testing.T) {
	d := tpmtest.OpenDevice(t)
	ak := d.NewAK(t, "ak")
	key := d.NewKey(t, ak, "k")
	akw, cw := d.AKWire(t, ak), d.CertifyWire(t, key)
	ek := d.EK.Public()
	accepts := func(a tpmwire.AK, c tpmwire.Certify) bool {
		got, err := tpmattest.CheckAK(a)
		if err != nil {
			return false
		}
		if _, err := got.CheckCertify(c, key.Public()); err != nil {
			return false
		}
		_, _, err = got.MakeCredential(ek, rand.Reader)
		return err == nil
	}
	if !accepts(akw, cw) {
		t.Fatal("honest evidence refused")
	}
	fields := []struct {
		name string
		get  func(*tpmwire.AK, *tpmwire.Certify) *[]byte
	}{
		{"ak.public", func(a *tpmwire.AK, _ *tpmwire.Certify) *[]byte { return &a.Public }},
		{"ak.create_data", func(a *tpmwire.AK, _ *tpmwire.Certify) *[]byte { return &a.CreateData }},
		{"ak.create_attestation", func(a *tpmwire.AK, _ *tpmwire.Certify) *[]byte { return &a.CreateAttestation }},
		{"ak.create_signature", func(a *tpmwire.AK, _ *tpmwire.Certify) *[]byte { return &a.CreateSignature }},
		{"certify.public", func(_ *tpmwire.AK, c *tpmwire.Certify) *[]byte { return &c.Public }},
		{"certify.attest", func(_ *tpmwire.AK, c *tpmwire.Certify) *[]byte { return &c.Attest }},
		{"certify.signature", func(_ *tpmwire.AK, c *tpmwire.Certify) *[]byte { return &c.Signature }},
	}
	for _, f := range fields {
		a, c := akw, cw
		orig := *f.get(&a, &c)
		for i := range orig {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				a, c = akw, cw
				m := append([]byte(nil), orig...)
				m[i] ^= mask
				*f.get(&a, &c) = m
				if accepts(a, c) {
					t.Errorf("%s: byte %d ^ %#x accepted", f.name, i, mask)
				}
			}
			a, c = akw, cw
			*f.get(&a, &c) = orig[:i]
			if accepts(a, c) {
				t.Errorf("%s truncated to %d bytes accepted", f.name, i)
			}
		}
	}
}
