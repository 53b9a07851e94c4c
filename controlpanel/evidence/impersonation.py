"""Acting as an API role on a target, inside a transaction that is always rolled back.

Everything the probes and the SLA timing do happens between ``rolled_back(conn)`` and its end: the
transaction is rolled back whatever happened, so nothing is ever left behind on the target. Each probe
runs in its own savepoint (``as_role``), so one failing probe neither aborts nor hides the others.
"""

import json
from contextlib import contextmanager

from psycopg import sql

PROBE_STATEMENT_TIMEOUT = "30s"


@contextmanager
def rolled_back(conn):
    """A transaction that is rolled back at the end (a savepoint if one is already open)."""
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL statement_timeout = '{PROBE_STATEMENT_TIMEOUT}'")
        conn.execute("SET LOCAL lock_timeout = '2s'")
        yield conn


# auth.uid() has read request.jwt.claim.sub, request.jwt.claims, or both in either order, with or
# without nullif(…, ''): every setting it may read holds the same identity, and none is ever '' where
# a definition without nullif would cast it to uuid.
NO_USER = "00000000-0000-0000-0000-000000000000"


def jwt_settings(conn, role: str, user_id=None) -> dict[str, str]:
    """The request.jwt.* settings that make every shipped auth.uid() return `user_id` (no user: none)."""
    claims = {"role": role}
    values = {"request.jwt.claim.role": role}
    if user_id is not None:
        claims["sub"] = values["request.jwt.claim.sub"] = str(user_id)
    else:
        # A custom setting once set in a session reads '' (never NULL again) and ''::uuid raises:
        # then the nil UUID, which no user has, stands for "nobody".
        defined = conn.execute("SELECT current_setting('request.jwt.claim.sub', true) IS NOT NULL").fetchone()[0]
        if defined:
            values["request.jwt.claim.sub"] = NO_USER
    values["request.jwt.claims"] = json.dumps(claims)
    return values


@contextmanager
def as_role(conn, role: str, user_id=None):
    """A savepoint in which the session is `role` with the JWT claims of `user_id` (always rolled back)."""
    with conn.transaction(force_rollback=True):
        values = jwt_settings(conn, role, user_id)
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        conn.execute("SELECT set_config(name, value, true) FROM jsonb_each_text(%s::jsonb) AS s(name, value)",
                     (json.dumps(values),))
        yield conn


def error_text(exc) -> str:
    """A one-line error with its SQLSTATE (never a DSN: errors from statements do not carry it)."""
    state = getattr(getattr(exc, "diag", None), "sqlstate", None) or ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{state} {message}".strip()


def sqlstate(exc) -> str:
    return getattr(getattr(exc, "diag", None), "sqlstate", None) or ""
