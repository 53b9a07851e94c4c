"""Queued evidence is "being collected since …", never "not measured", until the collection has run."""

import pytest

from controlpanel.evidence import pending
from controlpanel.evidence.scorecard import build_scorecard
from controlpanel.runs import engine
from controlpanel.runs.models import Attempt


@pytest.mark.django_db
def test_queued_evidence_is_pending_until_collected(oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    attempt = Attempt.objects.create(step=run.steps.get(key="step5.database"), number=1, requested_by=oncall,
                                     status="succeeded")
    assert pending.pending(run) is None
    assert not any(line["pending"] for line in build_scorecard(run))

    pending.mark(attempt, pending.QUEUED)
    state = pending.pending(run)
    assert state["state"] == "queued"
    lines = build_scorecard(run)
    assert any(line["pending"] for line in lines)
    assert all(line["pending"] is None for line in lines if line["status"] != "not_measured")
    assert pending.wait_until_collected(run, timeout=0.3, poll=0.1)["state"] == "queued"  # --wait would exit 1

    pending.mark(attempt, pending.COLLECTING)
    assert pending.pending(run)["since"] == state["since"]  # since it was queued
    pending.mark(attempt, pending.COLLECTED)
    assert pending.pending(run) is None and pending.wait_until_collected(run, timeout=1) is None
