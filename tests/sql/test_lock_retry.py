"""The SQL runner retries a file that timed out on a lock from its start, says so, and fails when retries run out."""

import random

import psycopg
import pytest
from django.conf import settings

from controlpanel.targets.sqlrun import ListSink, RunOptions, StatementFailed, run_script
from controlpanel.targets.sqlscript import parse_script


def _server_dsn() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(host=db["HOST"], port=db["PORT"], user=db["USER"],
                                          password=db.get("PASSWORD") or None, dbname="postgres")


def test_a_lock_timeout_is_retried_then_fails_with_the_statement():
    key = random.randint(1, 2**31)
    options = RunOptions(lock_timeout_ms=100, lock_retries=2, backoff_seconds=0.05)
    sink = ListSink()
    with psycopg.connect(_server_dsn(), autocommit=True) as holder, psycopg.connect(_server_dsn()) as runner:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        with pytest.raises(StatementFailed) as failed:
            run_script(runner, parse_script(f"SELECT 1;\nSELECT pg_advisory_lock({key});\n", "busy.sql"), sink, options)
    retries = [e["message"] for e in sink.events if e["message"].startswith("Lock timeout on statement 2")]
    assert retries == ["Lock timeout on statement 2; retry 1/2 from statement 1 in 0.1s",
                       "Lock timeout on statement 2; retry 2/2 from statement 1 in 0.1s"]
    assert failed.value.detail["sqlstate"] == "55P03"

