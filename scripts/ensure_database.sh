#!/usr/bin/env bash
# Create the control database and the panel's login role for it, if they do not exist yet.
# The app role (CONTROL_DB_APP_ROLE, default <database>_app) is what web and workers connect as: no superuser,
# owns nothing; `manage.py migrate` (run as the owner) grants it the panel's tables, the audit log insert-only.
set -eu
name=$1
host=${CONTROL_DB_HOST:-127.0.0.1}; port=${CONTROL_DB_PORT:-5432}; user=${CONTROL_DB_OWNER:-${CONTROL_DB_USER:-postgres}}
app_role=${CONTROL_DB_APP_ROLE:-${name}_app}
q() { psql -h "$host" -p "$port" -U "$user" -d postgres -v ON_ERROR_STOP=1 "$@"; }
exists=$(q -Atc "SELECT 1 FROM pg_database WHERE datname = '$name'")
if [ "$exists" != "1" ]; then
  echo "Creating control database $name…"
  q -qc "CREATE DATABASE \"$name\""
fi
role=$(q -Atc "SELECT 1 FROM pg_roles WHERE rolname = '$app_role'")
if [ "$role" != "1" ]; then
  echo "Creating the panel's role $app_role (no superuser, owns nothing)…"
  q -qc "CREATE ROLE \"$app_role\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT"
fi
