"""A run's report (Markdown, JSON, CSV) carries the scorecard and evidence figures, and never a secret."""

import csv
import io
import json

import pytest
from django.urls import reverse

from controlpanel.runs import engine
from controlpanel.runs.models import StepRun

from .conftest import finish_step

PASSWORD = "Sup3r-S3cret-pw"
DSN = f"postgresql://migrator:{PASSWORD}@db.internal.example:5432/processaudit"
SERVICE_KEY = "eyJhbGciOiJIUzI1NiJ9.service-role-key-value"


@pytest.fixture
def secret_run(cast, make_target, monkeypatch, fake_scorecard):
    monkeypatch.setenv("CP_LEADS_SECRET_DSN", DSN)
    monkeypatch.setenv("CP_LEADS_SERVICE_KEY", SERVICE_KEY)
    target = make_target("prod-secret", "production", dsn_env_var="CP_LEADS_SECRET_DSN")
    target.service_key_env_var = "CP_LEADS_SERVICE_KEY"
    target.save()
    run = engine.create_run(target, cast["alice"])
    finish_step(run, "pre.assessment", cast["alice"], result={"queries": [
        {"label": "total_users", "columns": ["total_users"], "rows": [[200]]}]})
    # Even if a secret ever reached stored data (it should not), the export redacts it.
    finish_step(run, "step1.schema", cast["alice"], status=StepRun.Status.FAILED,
                error={"message": f"could not connect with {DSN} (password {PASSWORD}) key {SERVICE_KEY}"})
    return run


def download(client, run, fmt):
    response = client.get(reverse("leads:export", args=[run.pk, fmt]))
    assert response.status_code == 200
    assert f"run-{run.pk}-" in response["Content-Disposition"]
    return response.content.decode()


@pytest.mark.parametrize("fmt", ["md", "json", "csv"])
def test_exports_never_contain_the_dsn_password_or_service_key(client, cast, secret_run, fmt):
    client.force_login(cast["lena"])
    text = download(client, secret_run, fmt)
    for secret in (DSN, PASSWORD, SERVICE_KEY, "db.internal.example:5432"):
        assert secret not in text
    assert "[redacted]" in text  # the redacted error is still there, so the reader knows something was removed


def test_json_report_has_scorecard_figures_and_steps(client, cast, secret_run):
    client.force_login(cast["lena"])
    report = json.loads(download(client, secret_run, "json"))
    assert report["run"] == secret_run.pk and report["target"] == "prod-secret"
    assert report["bundle"]["checksums"] == secret_run.checksums
    assert report["scorecard"]["summary"] == {"met": 2, "not_met": 1, "unknown": 0, "total": 3, "verdict": "not_met"}
    assert [line["title"] for line in report["scorecard"]["lines"]][0] == "Zero data loss"
    steps = {s["key"]: s for s in report["steps"]}
    assert steps["pre.assessment"]["figures"] == {"total_users": "200"}
    assert steps["step1.schema"]["status"] == "failed" and steps["step1.schema"]["attempts"] == 1
    assert "dsn_env_var" not in json.dumps(report) and "CP_LEADS_SECRET_DSN" not in json.dumps(report)


def test_markdown_report_reads_as_a_change_record(client, cast, secret_run):
    client.force_login(cast["lena"])
    text = download(client, secret_run, "md")
    assert text.startswith(f"# Migration run {secret_run.pk} on prod-secret (production)")
    assert '| Typical operations under 500 ms | not_met | {"p95_ms": 612} |' in text
    assert "2 met, 1 not met, 0 unknown of 3" in text
    assert "total_users: 200" in text


def test_csv_is_the_step_table(client, cast, secret_run):
    client.force_login(cast["lena"])
    rows = list(csv.DictReader(io.StringIO(download(client, secret_run, "csv"))))
    by_key = {r["key"]: r for r in rows}
    assert by_key["pre.assessment"]["status"] == "succeeded" and by_key["pre.assessment"]["seconds"] == "60.0"
    assert by_key["pre.assessment"]["estimate_minutes"] == "1–5"
    assert by_key["step1.schema"]["status"] == "failed"
    assert len(rows) == secret_run.steps.count()


def test_export_is_audited(client, cast, secret_run):
    from controlpanel.core.models import AuditEvent

    client.force_login(cast["lena"])
    download(client, secret_run, "md")
    assert AuditEvent.objects.filter(action="run.export", username="lena", detail__format="md").exists()


def test_report_says_when_the_scorecard_cannot_be_computed(client, cast, finished_run, monkeypatch):
    from controlpanel.leads import scorecards

    def broken(run):
        raise RuntimeError("evidence tables unavailable")

    monkeypatch.setattr(scorecards, "build_scorecard", broken)
    client.force_login(cast["lena"])
    assert "Scorecard could not be computed" in download(client, finished_run, "md")


def test_the_evidence_areas_real_scorecard_is_read(client, cast, finished_run):
    """No stand-in: build_scorecard's own lines (criterion, status met/not_met/not_measured) reach the report."""
    from controlpanel.evidence.scorecard import CRITERIA

    client.force_login(cast["lena"])
    report = json.loads(download(client, finished_run, "json"))
    lines = report["scorecard"]["lines"]
    assert [line["title"] for line in lines] == [c.text for c in CRITERIA]
    assert report["scorecard"]["summary"]["total"] == len(CRITERIA)
    assert {line["status"] for line in lines} <= {"met", "not_met", "unknown"}
