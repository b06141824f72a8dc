#!/usr/bin/env bash
# Installs what the driver matrix (this directory's Go tests) needs on
# Debian 12, as root: the Python drivers, pgJDBC with a JDK, node and the npm
# packages of package.json. A package is installed only when the check for
# what the tests use fails (node may come from elsewhere than Debian); safe
# to re-run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
need=()
have() { bash -c "$1" >/dev/null 2>&1; }
have '/usr/bin/python3 -c "import asyncpg"'    || need+=(python3-asyncpg)
have '/usr/bin/python3 -c "import psycopg"'    || need+=(python3-psycopg)
have '/usr/bin/python3 -c "import psycopg2"'   || need+=(python3-psycopg2)
have '/usr/bin/python3 -c "import sqlalchemy"' || need+=(python3-sqlalchemy)
have 'test -f /usr/share/java/postgresql.jar'  || need+=(libpostgresql-jdbc-java)
have 'command -v javac'                        || need+=(default-jdk-headless)
have 'command -v node'                         || need+=(nodejs)
have 'command -v npm'                          || need+=(npm)
if ((${#need[@]})); then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
npm install --no-audit --no-fund --loglevel=error
