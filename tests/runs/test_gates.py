"""Production gates: Step 1 on production needs a staging run with the same checksums past Step 2, or a lead."""

import pytest

from controlpanel.runs import engine, gates
from controlpanel.runs.models import StepRun


@pytest.fixture
def prod_run(db, oncall, target_factory):
    run = engine.create_run(target_factory(environment="production"), oncall)
    # Prerequisites done, so only the gates are left between the engineer and Step 1.
    run.steps.filter(key__startswith="pre.").update(status=StepRun.Status.SUCCEEDED)
    return run


def staging_reasons(run, user):
    return [r for r in gates.blockers(run, "step1.schema", user) if "staging" in r.lower()]


def test_production_step1_is_refused_without_staging(prod_run, oncall):
    assert staging_reasons(prod_run, oncall)
    with pytest.raises(engine.StepRefused, match="staging"):
        engine.start_step(prod_run, "step1.schema", oncall, confirm_target=prod_run.target.name)


def test_a_staging_run_with_the_same_checksums_opens_the_gate(prod_run, oncall, target_factory):
    staging = engine.create_run(target_factory(environment="staging"), oncall)
    assert staging_reasons(prod_run, oncall)
    staging.steps.filter(key="step2.validate").update(status=StepRun.Status.SUCCEEDED)
    assert not staging_reasons(prod_run, oncall)


def test_a_staging_run_with_other_checksums_does_not_count(prod_run, oncall, target_factory):
    staging = engine.create_run(target_factory(environment="staging"), oncall)
    staging.checksums = {**staging.checksums, "20250904000001_add_multi_tenant_organizations.sql": "0" * 64}
    staging.save()
    staging.steps.filter(key="step2.validate").update(status=StepRun.Status.SUCCEEDED)
    assert staging_reasons(prod_run, oncall)


def test_only_a_lead_can_override_and_it_needs_a_reason(prod_run, oncall, lead):
    with pytest.raises(engine.StepRefused, match="Only a lead"):
        engine.record_override(prod_run, "staging", oncall, "I am sure")
    with pytest.raises(engine.StepRefused, match="reason"):
        engine.record_override(prod_run, "staging", lead, "  ")
    engine.record_override(prod_run, "staging", lead, "staging cluster is down; rehearsed on a copy")
    assert not staging_reasons(prod_run, oncall)


def test_prerequisites_block_with_a_reason(db, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    reasons = gates.blockers(run, "step1.rls", oncall)
    assert any("Apply core schema changes" in r for r in reasons)


def test_mark_done_is_not_a_way_around_a_gate(prod_run, oncall):
    """A pending step cannot be marked done; nor can a stopped gated step while its gate is closed."""
    from controlpanel.runs.models import Attempt

    with pytest.raises(engine.StepRefused, match="ran and stopped"):
        engine.mark_done(prod_run, "step1.schema", oncall, "it is fine, trust me")
    step = prod_run.steps.get(key="step1.schema")
    Attempt.objects.create(step=step, number=1, requested_by=oncall, status="failed")
    step.status = "failed"
    step.save()
    with pytest.raises(engine.StepRefused, match="staging"):
        engine.mark_done(prod_run, "step1.schema", oncall, "it is fine, trust me")
    assert prod_run.steps.get(key="step1.schema").status == "failed"


def test_a_queued_attempt_cancelled_before_a_worker_takes_it_never_runs(transactional_db, oncall, demo_target):
    from controlpanel.runs import runner
    from controlpanel.runs.models import Attempt

    run = engine.create_run(demo_target, oncall)
    step = run.steps.get(key="pre.assessment")
    attempt = Attempt.objects.create(step=step, number=1, requested_by=oncall, status="queued")
    step.status = "queued"
    step.save()
    engine.cancel_step(run, "pre.assessment", oncall)
    attempt.refresh_from_db()
    assert attempt.status == "cancelled" and run.steps.get(key="pre.assessment").status == "cancelled"
    assert runner.execute(attempt.pk, worker="late") is None  # the redelivered message changes nothing
    attempt.refresh_from_db()
    assert attempt.status == "cancelled" and attempt.worker == ""


def test_the_reaper_repairs_a_step_whose_worker_died_after_recording_the_attempt(db, oncall, demo_target):
    from datetime import timedelta

    from django.utils import timezone

    from controlpanel.runs.models import Attempt

    run = engine.create_run(demo_target, oncall)
    step = run.steps.get(key="pre.assessment")
    step.status = "running"
    step.save()
    long_ago = timezone.now() - timedelta(minutes=5)
    attempt = Attempt.objects.create(step=step, number=1, requested_by=oncall, status="succeeded",
                                     finished_at=long_ago)
    assert attempt.pk in engine.reap_stale_steps()
    assert run.steps.get(key="pre.assessment").status == "succeeded"


def test_a_staging_validation_marked_done_by_hand_does_not_open_the_gate(prod_run, oncall, target_factory):
    staging = engine.create_run(target_factory(environment="staging"), oncall)
    staging.steps.filter(key="step2.validate").update(status=StepRun.Status.SUCCEEDED, signed_off_by=oncall,
                                                     sign_off_reason="looked fine")
    assert staging_reasons(prod_run, oncall)
