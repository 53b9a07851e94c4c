"""Environment for client programs (pg_dump, psql) that keeps the DSN out of their argument list."""

import os

from psycopg.conninfo import conninfo_to_dict

from .connection import dsn_for

_PGVARS = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
           "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}


def client_env(target) -> dict:
    """os.environ plus PG* variables for the target: `ps` shows no secret, the child needs no DSN."""
    params = conninfo_to_dict(dsn_for(target))
    env = dict(os.environ)
    for key, var in _PGVARS.items():
        if params.get(key):
            env[var] = str(params[key])
    return env
