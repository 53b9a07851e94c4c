#!/usr/bin/env bash
# Create the control database if it does not exist yet.
set -eu
name=$1
host=${CONTROL_DB_HOST:-127.0.0.1}; port=${CONTROL_DB_PORT:-5432}; user=${CONTROL_DB_USER:-postgres}
exists=$(psql -h "$host" -p "$port" -U "$user" -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$name'")
if [ "$exists" != "1" ]; then
  echo "Creating control database $name…"
  psql -h "$host" -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE \"$name\""
fi
