"""Lint of the bundle with squawk, and the seeding module's shape and determinism."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlb_helpers import BUNDLE, FORWARD, ROLLBACK, VALIDATION, build_baseline, connect, drop_database, unique_name

from controlpanel.targets.seeding import seed_target

FILES = [*FORWARD, ROLLBACK, VALIDATION]


def _squawk() -> str:
    local = Path(sys.executable).parent / "squawk"
    found = str(local) if local.exists() else shutil.which("squawk")
    if not found:
        pytest.fail("squawk is not installed: it is a pinned dependency (squawk-cli in requirements.lock)")
    return found


def test_squawk_reports_no_unjustified_findings():
    proc = subprocess.run([_squawk(), "--reporter", "json", *map(str, FILES)], capture_output=True, text=True)
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert proc.returncode == 0


def test_every_squawk_ignore_is_justified():
    for path in BUNDLE.glob("*.sql"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\s*--\s*squawk-ignore", line):
                assert i + 1 < len(lines) and lines[i + 1].lstrip().startswith("-- Justification:"), (
                    f"{path.name}:{i + 1}: squawk-ignore without a '-- Justification:' line")


def test_no_psql_meta_commands_and_headers_present():
    for path in FILES:
        text = path.read_text()
        assert not re.search(r"^\s*\\", text, re.M), f"{path.name} contains a psql meta-command"
        head = text[:3000].lower()
        assert "idempotent" in head and "lock" in head, path.name


def test_seed_is_proportional_varied_and_deterministic(pg_available):
    names = [unique_name("seed_"), unique_name("seed_")]
    try:
        sums = []
        for name in names:
            build_baseline(name)
            with connect(name) as conn:
                counts = seed_target(conn, users=50, reports=2000, seed=11)
                assert counts["auth.users"] == 50 and counts["public.profiles"] == 50
                assert counts["public.audit_reports"] == 2000
                assert 0.2 * 2000 <= counts["public.automation_jobs"] <= 0.4 * 2000
                completed = conn.execute(
                    "SELECT count(*) FROM automation_jobs WHERE status = 'completed'").fetchone()[0]
                assert completed <= counts["public.generated_automations"] <= 2 * completed
                assert counts["public.waitlist"] > 0
                linked = conn.execute("SELECT count(*) FROM automation_jobs j JOIN audit_reports r "
                                      "ON r.id = j.audit_report_id AND r.user_id = j.user_id").fetchone()[0]
                assert linked > counts["public.automation_jobs"] * 0.8
                assert conn.execute("SELECT count(DISTINCT title) FROM audit_reports").fetchone()[0] == 2000
                assert conn.execute("SELECT count(DISTINCT user_id) FROM audit_reports").fetchone()[0] > 25
                sums.append(conn.execute(
                    "SELECT md5(string_agg(id::text || user_id || title || tags::text, ',' ORDER BY id)) "
                    "FROM audit_reports").fetchone()[0])
        assert sums[0] == sums[1]
    finally:
        for name in names:
            drop_database(name)
