#!/bin/bash
# Runs once in a fresh primary (docker-entrypoint-initdb.d): allow streaming
# replication from the compose network and create the app database.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" -c "CREATE DATABASE app"
