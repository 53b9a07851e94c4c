"""The one place that opens connections to target databases.

A target's DSN is read from the environment at the moment of use and never leaves this module:
error messages are rebuilt without it, so nothing upstream can render or log it by accident.
"""

import os
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .secrets import REDACTED, redact, secret_values  # noqa: F401  (the one redaction, re-exported)


class TargetUnavailable(Exception):
    """The target cannot be reached; the message is safe to show."""


def dsn_for(target) -> str:
    dsn = os.environ.get(target.dsn_env_var, "").strip()
    if not dsn:
        raise TargetUnavailable(
            f"Target {target.name}: environment variable {target.dsn_env_var} is not set for this process."
        )
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # The parser's message quotes the part it could not read (often the password): say only where it is.
        raise TargetUnavailable(f"Target {target.name}: the DSN in {target.dsn_env_var} is malformed.") from None
    return dsn


def _first_line(message: str) -> str:
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
        reason = _first_line(redact(str(exc), secret_values(target)))
        raise TargetUnavailable(f"Target {target.name} is unreachable: {reason}") from None


@contextmanager
def target_connection(target, **kwargs):
    conn = connect(target, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


def scalar(conn, query, params=None):
    """The first value of a query that always returns a row (count(*), to_regclass(...), current_setting(...))."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise ValueError("the query returned no row")
    return row[0]
