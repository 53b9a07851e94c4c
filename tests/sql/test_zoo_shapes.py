"""The bundle on every zoo shape, run as each target's own migration role (a non-superuser on `platform`).

Per shape: forward in runbook order, validation all PASSED, every user's access unchanged, every original
row and column intact (updated_at included), idempotent re-run, exact rollback, nothing hung on auth.users.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import psycopg
import pytest
from sqlb_helpers import (
    CATEGORIES,
    FORWARD,
    ROLLBACK,
    VALIDATION,
    access_of,
    content_checksums,
    present_tables,
)

from controlpanel.targets import zoo
from controlpanel.targets.catalog import diff_fingerprints, schema_fingerprint, table_counts
from tests.helpers import targets as target_support

SHAPES = ["baseline", "minimal", "strict", "platform", "strict,platform", "minimal,platform"]


def _psql(target_dsn: str, path) -> str:
    proc = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", target_dsn, "-f", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"psql -f {path.name} as {target_dsn} failed:\n{proc.stderr[-3000:]}"
    return proc.stderr


def _state(admin_dsn: str):
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        tables = present_tables(conn)
        triggers = {r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal")}
        return schema_fingerprint(conn), table_counts(conn, tables), content_checksums(conn, tables), triggers


@pytest.fixture
def shaped(request, pg_available):
    template = target_support.ensure_template(60, 1200, tuple(request.param.split(",")))
    built = zoo.clone_target(target_support.dsn(template), f"sqlb_zoo_{uuid.uuid4().hex[:10]}")
    yield built
    zoo.drop_target(built.admin_dsn, roles=False)


@pytest.mark.parametrize("shaped", SHAPES, indirect=True)
def test_forward_validation_rerun_and_rollback_on_every_shape(shaped):
    fp_before, counts_before, sums_before, triggers_before = _state(shaped.admin_dsn)
    with psycopg.connect(shaped.admin_dsn) as conn:
        users = [r[0] for r in conn.execute("SELECT id FROM auth.users ORDER BY id LIMIT 12")]
    access_before = access_of(shaped.name, users)

    for path in FORWARD:
        _psql(shaped.dsn, path)
    output = _psql(shaped.dsn, VALIDATION)
    results = dict(re.findall(r"RESULT: (.+?) tests (PASSED|FAILED)", output))
    assert results == {c: "PASSED" for c in CATEGORIES}, output
    fp_migrated, counts_after, sums_after, triggers_after = _state(shaped.admin_dsn)
    assert counts_after == counts_before and sums_after == sums_before  # every column kept, updated_at included
    assert triggers_after == triggers_before
    assert access_of(shaped.name, users) == access_before

    for path in FORWARD:  # idempotent: a re-run changes nothing
        _psql(shaped.dsn, path)
    assert diff_fingerprints(fp_migrated, _state(shaped.admin_dsn)[0]) == []

    _psql(shaped.dsn, ROLLBACK)
    fp_after, counts_rolled, sums_rolled, _ = _state(shaped.admin_dsn)
    assert diff_fingerprints(fp_before, fp_after) == []
    assert counts_rolled == counts_before and sums_rolled == sums_before
