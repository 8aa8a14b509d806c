#!/usr/bin/env bash
# verify-artifact-openssl.sh checks a workerca artifact signature with
# nothing but openssl and coreutils, as docs/artifacts.md describes: the
# file's SHA-256 against the signed payload, the JWS signature against the
# x5c leaf's key, and the x5c chain against a trust bundle.
#
#   scripts/verify-artifact-openssl.sh FILE SIG.jws ROOTS.pem [UNIX-TIME]
#
# UNIX-TIME is the instant to check the chain at (openssl verify -attime),
# e.g. the receipt's registered_at; default now. It does not check the
# receipt or revocation: `workerca verify artifact` does those.
# Exit status 0 means all three checks passed.
set -euo pipefail

[[ $# -ge 3 && $# -le 4 ]] || { echo "usage: $0 FILE SIG.jws ROOTS.pem [UNIX-TIME]" >&2; exit 2; }
file=$1 sig=$2 roots=$3 attime=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# b64url: base64url (no padding) to binary.
b64url() {
	local s
	s=$(tr -d '\n')
	while (( ${#s} % 4 )); do s+='='; done
	printf '%s' "$s" | basenc --base64url -d
}
# field NAME: a string or first-array value from the JSON on stdin (the
# header and payload are flat JSON objects we produce).
field() { grep -o "\"$1\":\\[\\?\"[^\"]*\"" | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'; }

IFS=. read -r h p s <"$sig"
header=$(printf '%s' "$h" | b64url)
payload=$(printf '%s' "$p" | b64url)
alg=$(printf '%s' "$header" | field alg)
want=$(printf '%s' "$payload" | field sha256)

# 1. The file is the one signed.
got=$(sha256sum "$file" | cut -d' ' -f1)
[[ $got == "$want" ]] || { echo "digest mismatch: file $got, signed $want" >&2; exit 1; }
echo "digest: OK ($got)"

# 2. The JWS verifies with the key of the x5c leaf (RFC 7515 §5.2).
printf '%s' "$header" | grep -o '"x5c":\[[^]]*\]' | sed 's/^"x5c"://' | grep -o '"[A-Za-z0-9+/=]*"' | tr -d '"' >"$work/x5c"
n=0
while read -r der; do
	printf '%s' "$der" | base64 -d | openssl x509 -inform DER -out "$work/cert$n.pem"
	n=$((n + 1))
done <"$work/x5c"
((n > 0)) || { echo "no x5c chain in the signature" >&2; exit 1; }
openssl x509 -in "$work/cert0.pem" -pubkey -noout >"$work/pub.pem"
printf '%s.%s' "$h" "$p" >"$work/input"
printf '%s' "$s" | b64url >"$work/sig.raw"
case $alg in
ES256 | ES384)
	# JWS carries r||s (RFC 7518 §3.4); openssl wants a DER ECDSA-Sig-Value.
	hex=$(xxd -p -c 256 "$work/sig.raw")
	half=$((${#hex} / 2))
	printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "${hex:0:half}" "${hex:half}" >"$work/sig.cnf"
	openssl asn1parse -genconf "$work/sig.cnf" -out "$work/sig.der" >/dev/null
	openssl dgst "-sha${alg#ES}" -verify "$work/pub.pem" -signature "$work/sig.der" "$work/input"
	;;
RS256)
	openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/sig.raw" "$work/input"
	;;
EdDSA)
	openssl pkeyutl -verify -pubin -inkey "$work/pub.pem" -rawin -in "$work/input" -sigfile "$work/sig.raw"
	;;
*)
	echo "unknown alg $alg" >&2
	exit 1
	;;
esac

# 3. The leaf chains to the bundle through the x5c intermediates.
args=(-CAfile "$roots" -purpose any)
if ((n > 1)); then
	for ((i = 1; i < n; i++)); do cat "$work/cert$i.pem"; done >"$work/untrusted.pem"
	args+=(-untrusted "$work/untrusted.pem")
fi
[[ -n $attime ]] && args+=(-attime "$attime")
openssl verify "${args[@]}" "$work/cert0.pem"
