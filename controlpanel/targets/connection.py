"""The one place that opens connections to target databases.

A target's DSN is read from the environment at the moment of use and never leaves this module:
error messages are rebuilt without it, so nothing upstream can render or log it by accident.
"""

import os
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict


class TargetUnavailable(Exception):
    """The target cannot be reached; the message is safe to show."""


def dsn_for(target) -> str:
    dsn = os.environ.get(target.dsn_env_var, "").strip()
    if not dsn:
        raise TargetUnavailable(
            f"Target {target.name}: environment variable {target.dsn_env_var} is not set for this process."
        )
    return dsn


def _scrub(message: str, dsn: str) -> str:
    secrets = {dsn}
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        secrets.add(str(password))
    for secret in secrets:
        message = message.replace(secret, "***")
    return message.strip().splitlines()[0] if message.strip() else "connection failed"


def connect(target, *, autocommit: bool = True, application_name: str = "controlpanel", connect_timeout: int = 5,
            **kwargs) -> psycopg.Connection:
    """Open a new connection to the target (caller closes it)."""
    dsn = dsn_for(target)
    try:
        return psycopg.connect(
            dsn,
            autocommit=autocommit,
            application_name=application_name,
            connect_timeout=connect_timeout,
            **kwargs,
        )
    except psycopg.Error as exc:
        raise TargetUnavailable(f"Target {target.name} is unreachable: {_scrub(str(exc), dsn)}") from None


@contextmanager
def target_connection(target, **kwargs):
    conn = connect(target, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


def database_name(target) -> str:
    """The database name of the target (not secret; shown in confirmations)."""
    return conninfo_to_dict(dsn_for(target)).get("dbname", "")
