"""Runs with steps, attempts and events made directly in the control DB (no target, no worker needed)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from controlpanel.runs import engine
from controlpanel.runs.models import Attempt, StepEvent, StepRun
from controlpanel.targets.models import Target


@pytest.fixture
def make_target(db):
    def make(name, environment="staging", dsn_env_var="CP_LEADS_UNUSED_DSN"):
        return Target.objects.create(name=name, environment=environment, dsn_env_var=dsn_env_var)

    return make


def finish_step(run, key, user, *, seconds=60, status=StepRun.Status.SUCCEEDED, result=None, error=None,
                started=None):
    """Record a step as executed: one attempt with timings, a result and an event."""
    step = run.steps.get(key=key)
    started = started or timezone.now() - timedelta(hours=1)
    finished = started + timedelta(seconds=seconds)
    number = step.attempts.count() + 1
    attempt = Attempt.objects.create(step=step, number=number, requested_by=user, status=status,
                                     worker="w1@test", started_at=started, finished_at=finished,
                                     result=result or {}, error=error)
    StepEvent.objects.create(attempt=attempt, kind=StepEvent.Kind.INFO, message="done")
    step.status, step.started_at, step.finished_at = status, started, finished
    step.save()
    return attempt


@pytest.fixture
def finished_run(cast, make_target):
    """A completed-looking staging run by alice: assessment figures, schema applied, validation tests."""
    target = make_target("stage-1", "staging")
    run = engine.create_run(target, cast["alice"])
    t0 = timezone.now() - timedelta(hours=2)
    finish_step(run, "pre.assessment", cast["alice"], seconds=30, started=t0, result={"queries": [
        {"label": "total_users", "sql": "…", "columns": ["total_users"], "rows": [[200]]},
        {"label": "total_reports", "sql": "…", "columns": ["total_reports"], "rows": [[2000]]}]})
    finish_step(run, "step1.schema", cast["alice"], seconds=540, started=t0 + timedelta(minutes=1),
                result={"file": "x.sql", "statements": 42, "rows": 0, "lock_retries": 1, "seconds": 540})
    finish_step(run, "step2.validate", cast["alice"], seconds=20, started=t0 + timedelta(minutes=20),
                result={"categories": [{"category": "Schema", "status": "PASSED"},
                                        {"category": "RLS Policies", "status": "PASSED"}]})
    run.status = run.Status.COMPLETED
    run.finished_at = t0 + timedelta(minutes=30)
    run.save()
    return run


@pytest.fixture
def fake_scorecard(monkeypatch):
    """Stands in for controlpanel.evidence.scorecard.build_scorecard, with its real shape."""
    from controlpanel.leads import scorecards

    def build(run):
        return [
            {"criterion": "Zero data loss", "status": "met", "evidence": {"summary": "200 users, 2000 reports"}},
            {"criterion": "Typical operations under 500 ms", "status": "not_met", "evidence": {"p95_ms": 612}},
            {"criterion": "Size growth under 10 %", "status": "met", "evidence": {"growth_percent": 4.2}},
        ]

    monkeypatch.setattr(scorecards, "build_scorecard", build)
    return build
