#!/usr/bin/env bash
# Installs what the build and the whole test suite need on Debian 12, and
# nothing else. The one list of system packages is the table below.
#
#   scripts/deps.sh           install whatever is missing (root; non-interactive,
#                             idempotent, a no-op in well under a second when all is there)
#   scripts/deps.sh --check   exit 1 and name what is missing, install nothing
#
# `make deps` runs the first; `make test` runs the second and then the first
# when something is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# check (a bash command that succeeds when it is there) → Debian package.
# Keep one line per package; tests that need a tool fail with "make deps".
DEPS=(
	'test -x /usr/lib/postgresql/15/bin/initdb|postgresql-15'
	'command -v psql|postgresql-client-15'
	'command -v gcc|gcc'
	'command -v git|git'
	'command -v prlimit|util-linux'
	'command -v pgbouncer|pgbouncer'
	'command -v prometheus|prometheus'
	'/usr/bin/python3 -c "import psycopg"|python3-psycopg'
	'/usr/bin/python3 -c "import psycopg2"|python3-psycopg2'
	'/usr/bin/python3 -c "import asyncpg"|python3-asyncpg'
	'/usr/bin/python3 -c "import sqlalchemy"|python3-sqlalchemy'
	'command -v javac|default-jdk-headless'
	'test -f /usr/share/java/postgresql.jar|libpostgresql-jdbc-java'
	'command -v node|nodejs'
	'command -v npm|npm'
	'command -v etcd|etcd-server'
)

# Services Debian would start for the packages above; ours hold their ports.
SERVICES=(postgresql pgbouncer prometheus prometheus-node-exporter etcd)

NODE_DIR=test/clients
NODE_STAMP=$NODE_DIR/node_modules/.deps-stamp

log() { printf '==> deps: %s\n' "$*"; }

missing_packages() {
	local row
	for row in "${DEPS[@]}"; do
		bash -c "${row%|*}" >/dev/null 2>&1 || echo "${row##*|}"
	done
}

# node_stamp is what package.json (and a lock file, if one is committed)
# looked like when node_modules was last installed.
node_stamp() {
	cat "$NODE_DIR"/package.json "$NODE_DIR"/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1
}

node_modules_current() {
	[[ ! -f $NODE_DIR/package.json ]] && return 0
	[[ -f $NODE_STAMP && "$(cat "$NODE_STAMP")" == "$(node_stamp)" ]]
}

# install_packages runs apt-get with a policy-rc.d that answers 101, so
# Debian does not start postgresql/pgbouncer/prometheus on the ports the
# tests use (the file is removed again unless it was there before).
install_packages() {
	local made_policy=no
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=yes
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Another apt run (a colleague, unattended-upgrades) may hold the lock.
	local apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
	# An old or empty package list finds nothing: refresh it at most daily.
	if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]]; then
		"${apt[@]}" update
	fi
	"${apt[@]}" install --no-install-recommends "$@" || {
		"${apt[@]}" update && "${apt[@]}" install --no-install-recommends "$@"
	}
	if [[ $made_policy == yes ]]; then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT
	fi
	stop_services
}

# stop_services stops and disables whatever got started anyway.
stop_services() {
	local svc
	for svc in "${SERVICES[@]}"; do
		if [[ -d /run/systemd/system ]] && systemctl list-unit-files "$svc.service" >/dev/null 2>&1; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif [[ -x /etc/init.d/$svc ]]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		fi
	done
}

install_node_modules() {
	log "npm in $NODE_DIR (node_modules missing or package.json changed)"
	local npm=(npm --no-audit --no-fund --loglevel=error)
	if [[ -f $NODE_DIR/package-lock.json ]] && git ls-files --error-unmatch "$NODE_DIR/package-lock.json" >/dev/null 2>&1; then
		(cd "$NODE_DIR" && "${npm[@]}" ci)
	else
		(cd "$NODE_DIR" && "${npm[@]}" install)
	fi
	node_stamp >"$NODE_STAMP"
}

main() {
	local missing
	mapfile -t missing < <(missing_packages)
	if [[ ${1:-} == --check ]]; then
		local ok=yes
		((${#missing[@]})) && { log "missing packages: ${missing[*]}"; ok=no; }
		node_modules_current || { log "$NODE_DIR/node_modules missing or older than package.json"; ok=no; }
		[[ $ok == yes ]]
		return
	fi
	if ((${#missing[@]})); then
		if ((EUID != 0)); then
			log "missing packages: ${missing[*]}; run as root: sudo make deps"
			return 1
		fi
		log "installing: ${missing[*]}"
		install_packages "${missing[@]}"
		mapfile -t missing < <(missing_packages)
		if ((${#missing[@]})); then
			log "still missing after apt-get install: ${missing[*]}"
			return 1
		fi
	fi
	node_modules_current || install_node_modules
	log "all present"
}

main "$@"
