#!/bin/sh
# enroll.sh enrolls a hardware host with a workerca CA using a one-time
# enrollment token. POSIX sh; needs only curl and openssl (and the usual
# awk, sed, tr, dirname, mkdir, mv, chmod). Run `sh enroll.sh --help` for usage.
#
# What it does, in order:
#  1. Trust on first contact: fetches GET <ca>/v1/bundle without checking
#     the server's certificate (the only request made that way; it carries
#     no secret), and keeps only the roots whose SubjectPublicKeyInfo
#     SHA-256 equals --ca-pin. None matches: it stops before the token is
#     sent anywhere. A bundle.pem left in the output directory by an
#     earlier run is used instead when it still holds the pinned root.
#  2. Makes a P-256 key and a CSR locally (umask 077); the key never
#     leaves the host. The CA ignores the CSR's names: the worker's
#     identity comes from the token.
#  3. Posts the CSR to <ca>/v1/enroll/token with the token, checking the
#     server's certificate against the pinned root only.
#  4. Checks the returned chain with openssl verify against the pinned
#     root, and that the certificate holds the new key.
#  5. Only then moves key.pem (0600), cert.pem, chain.pem and bundle.pem
#     into the output directory, each by rename from a temporary file in
#     that directory. A failed run leaves an earlier enrollment untouched.
set -eu

prog=enroll.sh

usage() {
	cat <<'EOF'
Usage: enroll.sh --ca URL --ca-pin sha256:HEX --out DIR [--token-file FILE]

Enrolls this host with a workerca CA using a one-time enrollment token,
with nothing but curl and openssl. The private key is made here and never
leaves this host.

  --ca URL            the CA's HTTPS address, e.g. https://ca.example.com:8443
  --ca-pin sha256:HEX SHA-256 of the CA root's SubjectPublicKeyInfo (DER);
                      the operator computes it from root.crt with
                        openssl x509 -in root.crt -pubkey -noout |
                          openssl pkey -pubin -outform DER | openssl dgst -sha256
  --out DIR           where to write key.pem (0600), cert.pem (the worker
                      certificate), chain.pem (certificate then intermediate)
                      and bundle.pem (the pinned root); created (0700) if missing
  --token-file FILE   file holding the one-time token (wct_...); without it
                      the token is read from the environment variable
                      WORKERCA_TOKEN
  -h, --help          show this help

The token is never put on a command line. The only request made without
checking the server's certificate is GET /v1/bundle, whose answer is used
only if a root in it matches --ca-pin. Running the script again is safe:
the files in DIR are replaced only after a new certificate has been issued
and checked, so a failed run (used or expired token, wrong pin, CA down)
leaves an earlier enrollment as it was.

Exit status:
  0  enrolled; the files are in DIR
  1  enrollment failed (CA unreachable, pin mismatch, token refused,
     bad answer, tool missing); the message says what to do
  2  usage error (missing or malformed argument)
EOF
}

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
usage_error() {
	say "$*"
	say "run '$prog --help' for usage"
	exit 2
}

# ---- arguments ----------------------------------------------------------

ca=
pin=
out=
token_file=
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--ca | --ca-pin | --out | --token-file)
		[ $# -ge 2 ] || usage_error "$1 needs a value"
		opt=$1
		val=$2
		shift 2
		;;
	--ca=* | --ca-pin=* | --out=* | --token-file=*)
		opt=${1%%=*}
		val=${1#*=}
		shift
		;;
	*) usage_error "unknown argument: $1" ;;
	esac
	case $opt in
	--ca) ca=$val ;;
	--ca-pin) pin=$val ;;
	--out) out=$val ;;
	--token-file) token_file=$val ;;
	esac
done

[ -n "$ca" ] || usage_error "--ca is required (the CA's address, e.g. https://ca.example.com:8443)"
[ -n "$pin" ] || usage_error "--ca-pin is required (sha256:<hex>, from the operator)"
[ -n "$out" ] || usage_error "--out is required (the directory for the key and certificate)"

case $ca in
https://?*) ;;
*) usage_error "--ca must be an https:// URL, not '$ca'" ;;
esac
while :; do
	case $ca in
	*/) ca=${ca%/} ;;
	*) break ;;
	esac
done

# The pin: sha256:<64 hex digits>; upper case and colons are accepted.
case $pin in
sha256:* | SHA256:*) pin=${pin#*:} ;;
*) usage_error "--ca-pin must look like sha256:<64 hex digits>, not '$pin'" ;;
esac
pin=$(printf '%s' "$pin" | tr -d ':' | tr 'ABCDEF' 'abcdef')
case $pin in
*[!0-9a-f]*) usage_error "--ca-pin must look like sha256:<64 hex digits>" ;;
esac
[ ${#pin} -eq 64 ] || usage_error "--ca-pin must have 64 hex digits after sha256:, not ${#pin}"
# SHA-256 of nothing: what a failed pipeline would hash to. Never a root.
[ "$pin" != e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ] ||
	usage_error "--ca-pin is the SHA-256 of empty input, not of a root's public key"

if [ -n "$token_file" ]; then
	[ -r "$token_file" ] || usage_error "--token-file $token_file cannot be read"
	token=$(sed -n '1{s/[[:space:]]//g;p;}' "$token_file")
	token_src=$token_file
else
	token=${WORKERCA_TOKEN:-}
	token_src=WORKERCA_TOKEN
	[ -n "$token" ] || usage_error "no token: give --token-file FILE or set WORKERCA_TOKEN"
	token=$(printf '%s' "$token" | tr -d '[:space:]')
fi
[ -n "$token" ] || usage_error "the token in $token_src is empty"
# Tokens are wct_ followed by base64url-ish text; anything else (a newline
# above all) must not reach an HTTP header.
case $token in
*[!A-Za-z0-9_.~+/=-]*) usage_error "the token in $token_src holds characters a token cannot have" ;;
esac

for t in curl openssl awk sed tr dirname; do
	command -v "$t" >/dev/null 2>&1 || die "$t is not installed; install it and run again"
done

# ---- helpers ------------------------------------------------------------

umask 077
stage=
created=  # the highest directory of --out that this run made
finished=0
# cleanup removes the temporary directory and, after a failure, the
# directories of --out that this run made (they are then empty).
cleanup() {
	if [ -n "$stage" ]; then
		rm -rf "$stage"
	fi
	if [ -n "$created" ] && [ "$finished" = 0 ]; then
		_d=$out
		while rmdir "$_d" 2>/dev/null && [ "$_d" != "$created" ]; do
			_d=$(dirname "$_d")
		done
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# nth_cert N: prints the Nth PEM certificate of stdin (empty if none).
nth_cert() {
	awk -v n="$1" '
		/-----BEGIN CERTIFICATE-----/ { i++ }
		i == n { print }
		i == n && /-----END CERTIFICATE-----/ { exit }'
}

# spki_pin: prints the hex SHA-256 of the SubjectPublicKeyInfo (DER) of the
# PEM certificate on stdin, or nothing if it is not one.
spki_pin() {
	_der_pub=$(openssl x509 -pubkey -noout 2>/dev/null) || return 0
	[ -n "$_der_pub" ] || return 0
	_h=$(printf '%s\n' "$_der_pub" | openssl pkey -pubin -outform DER 2>/dev/null | openssl dgst -sha256 2>/dev/null) || return 0
	_h=${_h##*= }
	case $_h in
	*[!0-9a-f]* | '') return 0 ;;
	esac
	[ ${#_h} -eq 64 ] && printf '%s\n' "$_h"
	return 0
}

# pinned_roots: reads PEM certificates on stdin and prints those whose SPKI
# SHA-256 is the pin; the pins of the others go to the file named $1.
pinned_roots() {
	_all=$(cat)
	_n=1
	: >"$1"
	while :; do
		_c=$(printf '%s\n' "$_all" | nth_cert "$_n")
		[ -n "$_c" ] || break
		_p=$(printf '%s\n' "$_c" | spki_pin)
		if [ "$_p" = "$pin" ]; then
			printf '%s\n' "$_c"
		else
			printf '  sha256:%s\n' "${_p:-(not a certificate)}" >>"$1"
		fi
		_n=$((_n + 1))
	done
}

# curl_ca ARGS...: curl trusting only the pinned root, https only.
curl_ca() {
	curl -sS --proto =https --connect-timeout 15 --max-time 60 --max-filesize 1048576 \
		--cacert "$stage/bundle.pem" "$@"
}

# json_field NAME FILE: the first "NAME": "value" string in a JSON file.
json_field() {
	tr -d '\n' <"$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | tr -d '\000-\037'
}

# ---- 1. the pinned root -------------------------------------------------

if [ -e "$out" ] && [ ! -d "$out" ]; then
	die "--out $out exists and is not a directory"
fi
if [ ! -d "$out" ]; then
	_d=$out
	while [ ! -d "$_d" ]; do
		created=$_d
		_d=$(dirname "$_d")
	done
	mkdir -p "$out" || die "cannot create $out"
fi
stage=$out/.enroll.$$
mkdir "$stage" || die "cannot create the temporary directory $stage"

if [ -s "$out/bundle.pem" ] &&
	pinned_roots "$stage/others" <"$out/bundle.pem" >"$stage/bundle.pem" && [ -s "$stage/bundle.pem" ]; then
	say "using the pinned root in $out/bundle.pem"
else
	if [ -s "$out/bundle.pem" ]; then
		say "$out/bundle.pem does not hold the pinned root; fetching the CA's bundle again"
	fi
	if ! curl -fsS --insecure --proto =https --connect-timeout 15 --max-time 60 --max-filesize 1048576 \
		-o "$stage/fetched.pem" "$ca/v1/bundle" 2>"$stage/curl.err"; then
		die "cannot fetch $ca/v1/bundle: $(cat "$stage/curl.err"); check --ca and that this host can reach the CA"
	fi
	pinned_roots "$stage/others" <"$stage/fetched.pem" >"$stage/bundle.pem"
	if [ ! -s "$stage/bundle.pem" ]; then
		if [ -s "$stage/others" ]; then
			say "error: no root offered by $ca matches --ca-pin sha256:$pin; it offered:"
			cat "$stage/others" >&2
		else
			say "error: $ca/v1/bundle holds no certificate; is --ca a workerca server?"
		fi
		say "nothing was sent and nothing written. Check the pin with the operator"
		say "(it is computed from root.crt, see --help). If it is right, something"
		say "between this host and the CA is answering in its place: do not go on."
		exit 1
	fi
fi

# ---- 2. key and CSR -----------------------------------------------------

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve \
	-out "$stage/key.pem" 2>"$stage/openssl.err" || die "openssl genpkey: $(cat "$stage/openssl.err")"
chmod 600 "$stage/key.pem"
openssl req -new -key "$stage/key.pem" -subj / -out "$stage/csr.pem" 2>"$stage/openssl.err" ||
	die "openssl req: $(cat "$stage/openssl.err")"

# ---- 3. enroll ----------------------------------------------------------

# The token goes to curl through its config on stdin, never through argv
# (which other users can read in ps).
status=$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
	curl_ca -K - -H 'Content-Type: application/pkcs10' --data-binary "@$stage/csr.pem" \
		-o "$stage/answer" -w '%{http_code}' "$ca/v1/enroll/token" 2>"$stage/curl.err") ||
	die "POST $ca/v1/enroll/token failed: $(cat "$stage/curl.err"); nothing was changed in $out"

if [ "$status" != 201 ] && [ "$status" != 200 ]; then
	code=$(json_field code "$stage/answer")
	msg=$(json_field message "$stage/answer")
	if [ -z "$code" ]; then
		die "the CA answered HTTP $status without an error code; nothing was changed in $out"
	fi
	case $code in
	token_used) hint="this token has already enrolled a host; ask the operator for a new one" ;;
	token_expired) hint="this token has expired; ask the operator for a new one" ;;
	token_invalid | token_missing | unauthenticated) hint="the CA does not know this token; check $token_src holds the whole wct_... token" ;;
	rate_limited) hint="too many enrollments; wait a minute and run again" ;;
	ledger_unavailable) hint="the CA cannot reach its database; run again later" ;;
	*) hint="see docs/enrollment.md for what $code means" ;;
	esac
	say "error: the CA refused the enrollment: HTTP $status $code: $msg"
	say "$hint; nothing was changed in $out"
	exit 1
fi

# ---- 4. check the chain -------------------------------------------------

nth_cert 1 <"$stage/answer" >"$stage/cert.pem"
awk '/-----BEGIN CERTIFICATE-----/ { i++ } i >= 2 { print }' "$stage/answer" >"$stage/intermediates.pem"
[ -s "$stage/cert.pem" ] || die "the CA's answer holds no certificate; nothing was changed in $out"
if [ -s "$stage/intermediates.pem" ]; then
	set -- -untrusted "$stage/intermediates.pem"
else
	set --
fi
if ! verified=$(openssl verify -purpose sslclient -CAfile "$stage/bundle.pem" "$@" "$stage/cert.pem" 2>&1); then
	die "the issued certificate does not chain to the pinned root: $verified; nothing was changed in $out"
fi
case $verified in
*": OK"*) ;;
*) die "the issued certificate does not chain to the pinned root: $verified; nothing was changed in $out" ;;
esac
cert_pub=$(openssl x509 -in "$stage/cert.pem" -pubkey -noout) || die "cannot read the issued certificate"
key_pub=$(openssl pkey -in "$stage/key.pem" -pubout) || die "cannot read the new key"
[ "$cert_pub" = "$key_pub" ] || die "the issued certificate is not for the key made here; nothing was changed in $out"
cat "$stage/cert.pem" "$stage/intermediates.pem" >"$stage/chain.pem"

# ---- 5. install ---------------------------------------------------------

chmod 644 "$stage/cert.pem" "$stage/chain.pem" "$stage/bundle.pem"
for f in bundle.pem key.pem cert.pem chain.pem; do
	mv -f "$stage/$f" "$out/$f" || die "cannot write $out/$f"
done
finished=1

spiffe=$(openssl x509 -in "$out/cert.pem" -noout -text | sed -n 's/.*URI:\(spiffe:[^, ]*\).*/\1/p' | head -n 1)
not_after=$(openssl x509 -in "$out/cert.pem" -noout -enddate | sed 's/^notAfter=//')
say "enrolled as ${spiffe:-(no SPIFFE ID)}, valid until $not_after"
say "wrote $out/key.pem (0600), $out/cert.pem, $out/chain.pem, $out/bundle.pem"
