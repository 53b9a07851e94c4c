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


REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4  # never "redact" trivially short values: they would mangle the whole text


def secret_values(target=None, variable_names=()) -> list[str]:
    """What must never be shown: the target's DSN and its password, its service key, and the values of
    the named environment variables. Longest first, so a DSN is replaced before the password inside it."""
    names = list(variable_names)
    if target is not None:
        names += [target.dsn_env_var, target.service_key_env_var]
    secrets = set()
    for name in names:
        value = os.environ.get(name or "", "")
        if not value:
            continue
        secrets.add(value)
        try:
            password = conninfo_to_dict(value).get("password")
        except psycopg.ProgrammingError:  # not a DSN: the value itself is the secret
            password = None
        if password:
            secrets.add(str(password))
    return sorted((v for v in secrets if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


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
