"""The rollback verdict read from the evidence snapshots: FAIL with the diff and the rows, and which
"before" counts (no worker: snapshots are taken here the way the evidence receiver takes them)."""

import subprocess
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from controlpanel.evidence.collect import take_snapshot
from controlpanel.evidence.scorecard import pre_migration_snapshot
from controlpanel.runs import engine
from controlpanel.runs.models import Attempt
from controlpanel.safety.rollback import NO_BEFORE, verdict
from controlpanel.targets.pgenv import client_env

from .conftest import migrate, query


def finished_attempt(run, key, user, status="succeeded"):
    step = run.steps.get(key=key)
    now = timezone.now()
    return Attempt.objects.create(step=step, number=step.attempts.count() + 1, requested_by=user, status=status,
                                  started_at=now, finished_at=now if status != "queued" else None)


def roll_back_with_psql(target):
    path = Path(settings.MIGRATION_BUNDLE_DIR) / "rollback-multi-tenant-organizations.sql"
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
                   env=client_env(target), check=True, capture_output=True)


def login(client, user):
    assert client.login(username=user.username, password=f"{user.username}-pass-123")
    return client


def test_a_rollback_that_leaves_schema_or_rows_behind_fails_with_the_diff_and_the_rows(
        db, client, oncall, lead, demo_target):
    run = engine.create_run(demo_target, oncall)
    assert verdict(run) is None  # no rollback yet: nothing to show
    before = take_snapshot(run, "before", finished_attempt(run, "pre.assessment", oncall))
    migrate(demo_target)

    # The migrated schema is still there: the fingerprint differs and the new tables count as differences.
    after = take_snapshot(run, "after_rollback", finished_attempt(run, "rollback.emergency", lead))
    result = verdict(run)
    assert result["after_snapshot"] == after.pk and result["before_snapshot"] == before.pk
    assert result["restored"] is False and result["fingerprint_restored"] is False
    assert any("organizations" in line for line in result["fingerprint_diff"])
    assert result["counts_equal"] is False
    assert result["counts"]["public.organizations"][0] is None and result["counts"]["public.organizations"][1] >= 1
    assert result["counts"]["public.audit_reports"] == [2000, 2000]

    # Rolled back, but one row lost: the schema is restored, the counts are not, and the row is named.
    roll_back_with_psql(demo_target)
    lost = query(demo_target, "SELECT id::text FROM public.generated_automations ORDER BY id LIMIT 1")[0][0]
    query(demo_target, "DELETE FROM public.generated_automations WHERE id = %s", (lost,))
    n = query(demo_target, "SELECT count(*) FROM public.generated_automations")[0][0]
    later = take_snapshot(run, "after_rollback", finished_attempt(run, "rollback.emergency", lead))
    result = verdict(run)
    assert result["after_snapshot"] == later.pk
    assert result["restored"] is False and result["fingerprint_restored"] is True and result["fingerprint_diff"] == []
    assert result["counts_equal"] is False and result["counts"]["public.generated_automations"] == [n + 1, n]
    assert "public.organizations" not in result["counts"]
    [row] = [r for r in result["tables"] if not r["unchanged"]]
    assert row["table"] == "public.generated_automations" and row["rows"]["lost"] == [lost]

    login(client, lead)
    for url in (f"/safety/runs/{run.pk}/rollback/", f"/runs/{run.pk}/"):
        page = client.get(url).content.decode()
        assert 'data-verdict="fail"' in page and "FAIL — not restored" in page
        assert 'data-fingerprint-restored="yes"' in page and 'data-counts-equal="no"' in page
        assert f"public.generated_automations {n + 1}→{n}" in page and lost in page


def test_a_before_snapshot_taken_after_step1_started_is_not_the_pre_migration_state(db, oncall, lead, demo_target):
    run = engine.create_run(demo_target, oncall)
    take_snapshot(run, "after_rollback", finished_attempt(run, "rollback.emergency", lead))
    assert verdict(run)["restored"] is None and verdict(run)["message"] == NO_BEFORE

    first = take_snapshot(run, "before", finished_attempt(run, "pre.assessment", oncall))
    finished_attempt(run, "step1.schema", oncall, status="queued")
    migrate(demo_target)
    take_snapshot(run, "before", finished_attempt(run, "pre.assessment", oncall))  # a re-run after Step 1
    assert pre_migration_snapshot(run) == first
    take_snapshot(run, "after_rollback", finished_attempt(run, "rollback.emergency", lead))  # not rolled back
    result = verdict(run)
    assert result["before_snapshot"] == first.pk
    # Compared with the re-run's snapshot (the migrated state) it would pass; with the true one it fails.
    assert result["restored"] is False and result["fingerprint_diff"]
