"""Environment for client programs (pg_dump, psql) that keeps the DSN out of their argument list."""

import os
import re
import subprocess
from pathlib import Path

from django.conf import settings
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


class ClientProgramError(Exception):
    """A client program is missing or too old for the server; the message names the fix."""


def client_program(name: str) -> str:
    """pg_dump / psql from PG_BIN_DIR when set (a newer client for a newer server), else from PATH."""
    directory = getattr(settings, "PG_BIN_DIR", "")
    return str(Path(directory) / name) if directory else name


def client_major(program: str) -> int:
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError as exc:
        raise ClientProgramError(f"cannot run {program}: {exc.strerror}") from None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    if not found:
        raise ClientProgramError(f"{program} --version printed no version: {out.strip()[:200]}")
    return int(found.group(1))


def check_client_version(program: str, server_version_num: int) -> None:
    """pg_dump refuses a server newer than itself ("aborting because of server version mismatch"): say so
    before anything is created, with the versions and the fix."""
    client, server = client_major(program), server_version_num // 10000
    if client < server:
        raise ClientProgramError(
            f"{program} is version {client} but the target runs PostgreSQL {server}: pg_dump cannot dump a newer "
            f"server. Set PG_BIN_DIR to the bin directory of PostgreSQL {server} (or newer) client programs "
            f"(pg_dump and psql), e.g. /usr/lib/postgresql/{server}/bin, and restart the workers.")
