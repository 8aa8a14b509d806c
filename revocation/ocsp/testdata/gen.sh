#!/usr/bin/env bash
# gen.sh regenerates the OpenSSL-made OCSP requests in this directory: the
# fixtures of TestParseRequestFixtures and seeds of FuzzParseRequest.
#
#   revocation/ocsp/testdata/gen.sh
#
# issuer.pem is a throwaway P-256 CA (its key is discarded); every request
# asks about a leaf it issued with serial 0x0123456789abcdef. Files named
# bad-*.der must be refused by ParseRequest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/issuer.key" -out issuer.pem -subj "/CN=ocsp fixture issuer" -days 36500 \
	-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/leaf.key" -out "$tmp/leaf.csr" -subj "/CN=ocsp fixture leaf" 2>/dev/null
openssl x509 -req -in "$tmp/leaf.csr" -CA issuer.pem -CAkey "$tmp/issuer.key" \
	-set_serial 0x0123456789abcdef -days 36500 -out "$tmp/leaf.pem" 2>/dev/null

req() { openssl ocsp -issuer issuer.pem "$@"; }
req -cert "$tmp/leaf.pem" -reqout sha1-nonce.der
req -cert "$tmp/leaf.pem" -no_nonce -reqout sha1-no-nonce.der
req -sha256 -cert "$tmp/leaf.pem" -reqout sha256-nonce.der
req -sha256 -cert "$tmp/leaf.pem" -no_nonce -reqout sha256-no-nonce.der
req -sha384 -cert "$tmp/leaf.pem" -reqout sha384-nonce.der
req -sha512 -cert "$tmp/leaf.pem" -no_nonce -reqout sha512-no-nonce.der
# Signed by the leaf: carries requestorName and optionalSignature.
req -cert "$tmp/leaf.pem" -signer "$tmp/leaf.pem" -signkey "$tmp/leaf.key" -reqout signed-with-requestor-name.der
req -cert "$tmp/leaf.pem" -cert "$tmp/leaf.pem" -reqout bad-two-requests.der
