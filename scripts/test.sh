#!/usr/bin/env bash
# scripts/test.sh is the project's single test command, run by developers
# and by CI (.ci/run).
#
#   scripts/test.sh                      # gofmt, go vet and go test -race on ./...
#   scripts/test.sh ./store/...          # the same, for the given packages only
#   scripts/test.sh -run TestX ./store/  # extra arguments go to go test
#
# Unless WORKERCA_TEST_POSTGRES_DSN is already set, it starts the local
# PostgreSQL cluster (installing PostgreSQL with apt-get when running as
# root without it), creates the role and database workerca / workerca_test,
# and exports WORKERCA_TEST_POSTGRES_DSN so the PostgreSQL tests run.
# It builds the tests with the tag tpmsimulator (the TPM 2.0 simulator
# tests), installing OpenSSL's headers (libssl-dev) if they are missing,
# and installs swtpm (a software TPM the agent's tests talk to).
# With CI=true a PostgreSQL or tool that cannot be had is an error; otherwise
# it is a warning and the PostgreSQL (or TPM) tests are left out.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_ci() { [[ "${CI:-}" == "true" ]]; }

# lack NAME WHY: a missing requirement is fatal in CI and a warning elsewhere.
lack() {
	if is_ci; then
		die "$1 is required in CI: $2"
	fi
	log "warning: $1 unavailable ($2); continuing without it"
}

apt_updated=0
# apt_install PKG...: installs Debian packages when running as root with apt-get.
apt_install() {
	[[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 || return 1
	if ((apt_updated == 0)); then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# as_postgres CMD...: runs a command as the postgres OS user.
as_postgres() {
	if [[ $(id -un) == postgres ]]; then
		"$@"
	elif command -v runuser >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	elif [[ $(id -u) -eq 0 ]]; then
		su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
	else
		sudo -n -u postgres -- "$@"
	fi
}

pg_role=workerca
pg_password=workerca
pg_database=workerca_test

# start_postgres starts (creating if need be) the newest local cluster and
# prepares the test role and database. It prints the DSN on success.
start_postgres() {
	if ! command -v pg_lsclusters >/dev/null 2>&1; then
		apt_install postgresql || { log "PostgreSQL is not installed and cannot be installed here"; return 1; }
	fi
	local line
	line=$(pg_lsclusters --no-header 2>/dev/null | sort -k1,1V | tail -n 1 || true)
	if [[ -z $line ]]; then
		local version
		version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
		[[ -n $version ]] || { log "no PostgreSQL server version found in /usr/lib/postgresql"; return 1; }
		log "creating PostgreSQL $version cluster main"
		pg_createcluster "$version" main >&2 || return 1
		line=$(pg_lsclusters --no-header | sort -k1,1V | tail -n 1)
	fi
	local version cluster port status
	read -r version cluster port status _ <<<"$line"
	if [[ $status != online* ]]; then
		log "starting PostgreSQL $version/$cluster on port $port"
		pg_ctlcluster "$version" "$cluster" start >&2 || return 1
	fi
	local i
	for i in $(seq 1 30); do
		if pg_isready -q -h 127.0.0.1 -p "$port"; then
			break
		fi
		((i == 30)) && { log "PostgreSQL did not become ready on port $port"; return 1; }
		sleep 1
	done

	as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<-SQL || return 1
		SELECT format('CREATE ROLE %I LOGIN', '$pg_role')
		WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$pg_role') \gexec
		ALTER ROLE $pg_role LOGIN PASSWORD '$pg_password';
		SELECT format('CREATE DATABASE %I OWNER %I', '$pg_database', '$pg_role')
		WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$pg_database') \gexec
	SQL
	local dsn="postgres://$pg_role:$pg_password@127.0.0.1:$port/$pg_database?sslmode=disable"
	PGPASSWORD=$pg_password psql -X -q -h 127.0.0.1 -p "$port" -U "$pg_role" -d "$pg_database" -c 'SELECT 1' >/dev/null ||
		{ log "cannot connect as $pg_role over TCP (check pg_hba.conf allows scram-sha-256 or md5 for 127.0.0.1)"; return 1; }
	printf '%s\n' "$dsn"
}

# 1-2. PostgreSQL for the store tests.
if [[ -n ${WORKERCA_TEST_POSTGRES_DSN:-} ]]; then
	log "using WORKERCA_TEST_POSTGRES_DSN from the environment"
elif dsn=$(start_postgres); then
	export WORKERCA_TEST_POSTGRES_DSN=$dsn
	log "PostgreSQL ready: WORKERCA_TEST_POSTGRES_DSN=$dsn"
else
	lack PostgreSQL "could not start a local cluster; the PostgreSQL tests will skip"
fi

# 3. Tools the tests shell out to, and Go itself.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || die "go is not installed"
for tool in openssl curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		apt_install "$tool" || lack "$tool" "not installed and cannot be installed here"
	fi
done
# swtpm: a software TPM 2.0 in its own process, for the agent's TPM test
# through a real command channel.
if ! command -v swtpm >/dev/null 2>&1 || ! command -v swtpm_setup >/dev/null 2>&1; then
	apt_install swtpm swtpm-tools || lack swtpm "not installed and cannot be installed here (Debian: swtpm swtpm-tools)"
fi
# The race detector needs cgo and a C compiler.
if ! command -v gcc >/dev/null 2>&1 && ! command -v "$(go env CC)" >/dev/null 2>&1; then
	apt_install gcc libc6-dev || die "go test -race needs a C compiler (gcc)"
fi
export CGO_ENABLED=1
# The TPM tests (build tag tpmsimulator) compile the Microsoft reference
# TPM 2.0 simulator with cgo against OpenSSL's libcrypto headers.
tags=()
if [[ -f /usr/include/openssl/evp.h ]] || apt_install libssl-dev; then
	tags=(-tags tpmsimulator)
else
	lack "OpenSSL headers (libssl-dev)" "the TPM simulator tests are left out"
fi

# 4. Format, vet, test. Package patterns among the arguments narrow vet and
# test; without any, both cover ./... .
pkgs=()
for arg in "$@"; do
	case $arg in
	. | ./* | ../* | ...) pkgs+=("$arg") ;;
	esac
done
test_args=("$@")
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
	test_args+=(./...)
fi

log "gofmt -l ."
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	printf '%s\n' "$unformatted" >&2
	die "gofmt: the files above need formatting (gofmt -w)"
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
if ((${#tags[@]} > 0)); then
	log "go vet ${tags[*]} ${pkgs[*]}"
	go vet "${tags[@]}" "${pkgs[@]}"
fi

log "go test -race -count=1 ${tags[*]} ${test_args[*]}"
go test -race -count=1 "${tags[@]}" "${test_args[@]}"
