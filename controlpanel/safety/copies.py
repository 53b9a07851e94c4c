"""Disposable copies of a target database for rehearsals, on the target's own server.

Why pg_dump | psql and not CREATE DATABASE … TEMPLATE: a template copy needs the source database to
have no other connection at all (a live target always has some: the application, the panel's health
checks), so it fails unpredictably. pg_dump reads one consistent MVCC snapshot taking only ACCESS SHARE
locks (writers continue), and psql restores it anywhere. A production target gets a schema-only copy:
no customer row is read. Staging and demo get a full copy so the backfill and counts are rehearsed too.

The copy's DSN lives only in this process's environment (under a variable named on an unsaved Target),
so connections still go through `targets.connection` and client programs get it via `targets.pgenv`.
"""

import os
import subprocess
import time
import uuid

from psycopg import sql
from psycopg.conninfo import make_conninfo

from controlpanel.targets.connection import dsn_for, target_connection
from controlpanel.targets.models import Target
from controlpanel.targets.pgenv import client_env

COPY_PREFIX = "cp_rehearsal_"


def copy_prefix() -> str:
    """The name prefix of this installation's copies: REHEARSAL_COPY_TAG (e.g. a test session's token) keeps
    concurrent sessions on one server apart, so each looks for and cleans up only its own copies."""
    tag = os.environ.get("REHEARSAL_COPY_TAG", "")  # read per call: a test session sets it after settings load
    return f"{COPY_PREFIX}{tag}_" if tag else COPY_PREFIX


class CopyFailed(Exception):
    """The copy could not be made; the message is safe to show (no DSN)."""


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class DisposableCopy:
    def __init__(self, target, *, schema_only: bool):
        self.source = target
        self.schema_only = schema_only
        token = uuid.uuid4().hex[:10]
        self.database = f"{copy_prefix()}{token}"
        self.env_var = f"CP_REHEARSAL_COPY_{token.upper()}"
        self.target = Target(name=f"{target.name}-rehearsal-copy", environment=target.environment,
                             dsn_env_var=self.env_var)
        self.created = False
        self.seconds = 0.0

    @property
    def method(self) -> str:
        return ("pg_dump --schema-only | psql (no data read)" if self.schema_only
                else "pg_dump | psql (full copy, one consistent snapshot)")

    def create(self) -> float:
        started = time.monotonic()
        with target_connection(self.source, application_name="controlpanel-rehearsal") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        self.created = True
        os.environ[self.env_var] = make_conninfo(dsn_for(self.source), dbname=self.database)
        dump = ["pg_dump", "--no-password", "--no-publications", "--no-subscriptions"]
        if self.schema_only:
            dump.append("--schema-only")
        restore = ["psql", "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", os.devnull]
        producer = subprocess.Popen(dump, env=client_env(self.source), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        consumer = subprocess.Popen(restore, env=client_env(self.target), stdin=producer.stdout,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        producer.stdout.close()
        _, restore_err = consumer.communicate()
        dump_err = producer.stderr.read()
        producer.wait()
        if producer.returncode != 0:
            raise CopyFailed(f"pg_dump of {self.source.name} failed: {_tail(dump_err.decode(errors='replace'))}")
        if consumer.returncode != 0:
            raise CopyFailed(f"restoring the copy failed: {_tail(restore_err.decode(errors='replace'))}")
        self.seconds = time.monotonic() - started
        return self.seconds

    def drop(self) -> None:
        try:
            if self.created:
                with target_connection(self.source, application_name="controlpanel-rehearsal") as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.database)))
                self.created = False
        finally:
            os.environ.pop(self.env_var, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drop()


