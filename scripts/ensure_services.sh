#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start installed local services that are down.
set -u
PGPORT=${CONTROL_DB_PORT:-5432}
fail=0

if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "PostgreSQL is down: starting cluster $version/main…"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 1; done
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT" 2>/dev/null; then
    echo "ERROR: PostgreSQL does not answer on 127.0.0.1:$PGPORT and no local cluster could be started." >&2
    echo "       Install PostgreSQL 15 (Debian: apt-get install postgresql) or set CONTROL_DB_HOST/PORT." >&2
    fail=1
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "Redis is down: starting it…"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "ERROR: Redis does not answer on 127.0.0.1:6379 and redis-server is not installed." >&2
    echo "       Install it (Debian: apt-get install redis-server) or set REDIS_URL." >&2
    fail=1
  fi
fi
exit $fail
