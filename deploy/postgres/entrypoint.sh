#!/bin/sh
# The record database for `docker compose up`: Debian's PostgreSQL 15, its data in a volume.
# First start: a cluster owned by POSTGRES_USER with POSTGRES_PASSWORD (scram-sha-256 over the
# network) and a database POSTGRES_DB. Then PostgreSQL runs in the foreground.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=cxr}" "${POSTGRES_DB:=cxr}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\";" | "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
