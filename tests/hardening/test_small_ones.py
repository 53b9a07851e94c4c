"""Small holes closed: the hashed bytes are the parsed bytes, CSV formulas, backups' mode, re-runs, blank
sign-offs, unclaimed queued steps, the StepCommand admin."""

import io
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from controlpanel.runs import bundle, engine
from controlpanel.runs.models import Attempt, StepEvent, StepRun


def test_the_checked_bytes_are_the_parsed_bytes(db, oncall, paper_target, bundle_copy, monkeypatch):
    """A file swapped right after its checksum was read must not run: the statement parsed is the reviewed one."""
    run = engine.create_run(paper_target, oncall, bundle_dir=bundle_copy)
    name = "20250904000001_add_multi_tenant_organizations.sql"
    path = bundle_copy / name
    reviewed = path.read_text()
    real_read_bytes = Path.read_bytes

    def read_then_swap(self):
        data = real_read_bytes(self)
        if self == path:  # the attacker wins the race: the file changes just after it was read
            self.write_text("DROP TABLE public.audit_reports;\n")
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_swap)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real_read_bytes(self).decode())
    script = bundle.verified_script(run, name)
    statements = " ".join(s.text for s in script.statements)
    assert "DROP TABLE public.audit_reports" not in statements
    assert len(script.statements) > 3 and script.statements[0].text in reviewed


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_escaped(db, cell):
    from controlpanel.core import csvsafe

    buffer = io.StringIO()
    csvsafe.writer(buffer).writerow([cell, 42, -1.5, "plain"])
    first = buffer.getvalue().split(",")[0].strip('"')
    assert first.startswith("'") and first[1:].replace('""', '"') == cell
    assert buffer.getvalue().rstrip().endswith(",42,-1.5,plain")


def test_the_support_export_escapes_formulas(db, client, cast, paper_target):
    from controlpanel.support.models import LookupResult

    found = LookupResult.objects.create(
        requester=cast["sam"], target=paper_target, kind=LookupResult.Kind.WITHOUT_MEMBERSHIP,
        status=LookupResult.Status.DONE,
        result={"users": [{"id": "1", "email": '=HYPERLINK("http://evil","x")', "created_at": "2025-01-01"}]})
    client.force_login(cast["sam"])
    body = client.get(f"/support/lookups/{found.pk}/export.csv").content.decode()
    assert "'=HYPERLINK" in body and ',"=HYPERLINK' not in body


def test_backups_are_readable_by_the_panel_user_only(db, oncall, demo_target, settings, tmp_path):
    from controlpanel.runs.executors.commands import run_backup
    from controlpanel.targets.connection import target_connection

    settings.BACKUP_DIR = tmp_path / "backups"
    run = engine.create_run(demo_target, oncall)

    class Sink:
        def emit(self, kind, message, **data):
            pass

    class Ctx:
        target, sink = demo_target, Sink()

        def is_cancelled(self):
            return False

    Ctx.run = run
    old_umask = os.umask(0o022)
    try:
        with target_connection(demo_target) as conn:
            Ctx.conn = conn
            result = run_backup(Ctx())
    finally:
        os.umask(old_umask)
    mode = stat.S_IMODE((settings.BACKUP_DIR / result["file"]).stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(settings.BACKUP_DIR.stat().st_mode) == 0o700


def test_a_succeeded_step_is_not_run_again_unless_asked(db, oncall, paper_target, monkeypatch):
    monkeypatch.setattr(engine, "dispatch", lambda attempt, previous: None)
    run = engine.create_run(paper_target, oncall)
    run.steps.filter(key="pre.backup").update(status=StepRun.Status.SUCCEEDED)
    with pytest.raises(engine.StepRefused, match="already succeeded"):
        engine.start_step(run, "pre.backup", oncall)
    attempt = engine.start_step(run, "pre.backup", oncall, rerun=True)
    assert attempt.status == "queued"


def test_a_direct_post_does_not_rerun_a_succeeded_step(db, client, oncall, paper_target, monkeypatch):
    monkeypatch.setattr(engine, "dispatch", lambda attempt, previous: None)
    run = engine.create_run(paper_target, oncall)
    run.steps.filter(key="pre.backup").update(status=StepRun.Status.SUCCEEDED)
    client.force_login(oncall)
    client.post(f"/runs/{run.pk}/steps/pre.backup/start/")
    assert not Attempt.objects.filter(step__run=run).exists()


@pytest.mark.parametrize("note", ["", "   ", "\n\t "])
def test_a_sign_off_needs_a_note_with_content(db, oncall, paper_target, note):
    run = engine.create_run(paper_target, oncall)
    with pytest.raises(engine.StepRefused, match="needs a note"):
        engine.sign_off(run, "step3.deploy", oncall, note=note)
    assert run.steps.get(key="step3.deploy").status == "pending"


def test_a_queued_attempt_no_worker_takes_is_failed_for_a_person(db, oncall, paper_target, settings):
    run = engine.create_run(paper_target, oncall)
    step = run.steps.get(key="pre.backup")
    step.status = StepRun.Status.QUEUED
    step.save()
    long_ago = timezone.now() - timedelta(seconds=settings.STEP_QUEUED_TIMEOUT_SECONDS + 5)
    attempt = Attempt.objects.create(step=step, number=1, requested_by=oncall, status="queued", queued_at=long_ago)
    fresh = run.steps.get(key="pre.environment")
    assert attempt.pk in engine.reap_stale_steps()
    attempt.refresh_from_db()
    step.refresh_from_db()
    assert attempt.status == step.status == "failed"
    assert "No worker took this step" in attempt.error["message"]
    assert StepEvent.objects.filter(attempt=attempt, kind="error", message__contains="No worker took").exists()
    assert fresh.status == "pending"


def test_a_recently_queued_attempt_is_left_alone(db, oncall, paper_target):
    run = engine.create_run(paper_target, oncall)
    step = run.steps.get(key="pre.backup")
    step.status = StepRun.Status.QUEUED
    step.save()
    attempt = Attempt.objects.create(step=step, number=1, requested_by=oncall, status="queued")
    assert attempt.pk not in engine.reap_stale_steps()
    assert Attempt.objects.get(pk=attempt.pk).status == "queued"


def test_leads_configure_step_commands_in_the_admin_and_it_is_audited(db, client, lead):
    from controlpanel.core.models import AuditEvent
    from controlpanel.runs.models import StepCommand

    lead.is_staff = True
    lead.save()
    client.force_login(lead)
    assert client.get("/admin/runs/stepcommand/").status_code == 200
    response = client.post("/admin/runs/stepcommand/add/", {
        "name": "workers_deploy", "environment": "", "working_directory": "/srv/workers",
        "arguments": '["npm", "run", "deploy"]', "passed_variables": '["CLOUDFLARE_API_TOKEN"]',
        "timeout_seconds": "900"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert StepCommand.objects.get().arguments == ["npm", "run", "deploy"]
    assert AuditEvent.objects.filter(action="admin.add", object_type="runs.StepCommand").exists()
    refused = client.post("/admin/runs/stepcommand/add/", {
        "name": "other", "environment": "", "working_directory": "/srv", "arguments": '"rm -rf /"',
        "passed_variables": '["not a name"]', "timeout_seconds": "900"})
    assert refused.status_code == 200 and StepCommand.objects.count() == 1
