package ocsp_test

import (
	"bytes"
	"crypto"
	"testing"
	"time"

	"github.com/workerca/workerca/revocation/ocsp"
)

// BenchmarkSign signs a good response with a nonce using a P-256
// responder key.
func BenchmarkSign(b *testing.B) {
	c := newChain(b, "p256")
	r, err := ocsp.New(ocsp.Config{Issuer: c.inter, Cert: c.responder, Key: c.responderKey})
	if err != nil {
		b.Fatal(err)
	}
	resp := ocsp.Response{
		Status: ocsp.Good, SerialNumber: randomSerial(b), HashAlgorithm: crypto.SHA256, Reason: -1,
		ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour), ProducedAt: epoch,
		Nonce: bytes.Repeat([]byte{0x42}, 32),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Sign(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequest parses a SHA-256 request with a 16-octet nonce, as
// openssl sends them.
func BenchmarkParseRequest(b *testing.B) {
	der := readFile(b, "testdata", "sha256-nonce.der")
	b.ReportAllocs()
	b.SetBytes(int64(len(der)))
	for b.Loop() {
		if _, err := ocsp.ParseRequest(der); err != nil {
			b.Fatal(err)
		}
	}
}
