#!/bin/bash
# A streaming replica: on first start clone the primary with pg_basebackup -R,
# then run postgres (hot standby).
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	until pg_isready -h "$PRIMARY_HOST" -U postgres; do sleep 1; done
	export PGPASSWORD="$POSTGRES_PASSWORD"
	pg_basebackup -h "$PRIMARY_HOST" -U postgres -D "$PGDATA" -R -X stream -P
	chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on
