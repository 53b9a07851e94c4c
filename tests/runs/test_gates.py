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


def test_mark_done_is_not_a_way_around_a_gate(prod_run, oncall, lead):
    """A pending step cannot be marked done; nor can a stopped gated step while its gate is closed; a step that
    changes the target is marked done by a lead only."""
    from controlpanel.runs.models import Attempt

    with pytest.raises(engine.StepRefused, match="ran and stopped"):
        engine.mark_done(prod_run, "step1.schema", lead, "it is fine, trust me")
    step = prod_run.steps.get(key="step1.schema")
    Attempt.objects.create(step=step, number=1, requested_by=oncall, status="failed")
    step.status = "failed"
    step.save()
    with pytest.raises(engine.StepRefused, match="Only a lead"):
        engine.mark_done(prod_run, "step1.schema", oncall, "it is fine, trust me")
    with pytest.raises(engine.StepRefused, match="staging"):
        engine.mark_done(prod_run, "step1.schema", lead, "it is fine, trust me")
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


# --- the gates that read evidence: preflight and rehearsal, declared in one list -----------------------

def _gate_reasons(run, word):
    return [r for r in gates.production_gates(run) if word in r.lower()]


def test_every_production_gate_is_declared_in_one_list():
    names = [gate.name for gate in gates.PRODUCTION_GATES]
    assert names == ["staging passed Step 2", "preflight without NO-GO", "rehearsal passed with its evidence",
                     "lead's approval of the checksums"]
    assert [gate.override for gate in gates.PRODUCTION_GATES][-1] is None  # approval cannot be overridden


def test_production_step1_needs_a_preflight_without_no_go_of_the_same_checksums(prod_run, oncall, lead):
    from controlpanel.safety.models import PreflightReport

    assert any("none has been run" in r for r in _gate_reasons(prod_run, "preflight"))
    PreflightReport.objects.create(target=prod_run.target, go=False, checksums=prod_run.checksums,
                                   data={"checks": [{"title": "table public.audit_reports", "status": "no-go"}]})
    assert any("NO-GO: table public.audit_reports" in r for r in _gate_reasons(prod_run, "preflight"))
    PreflightReport.objects.create(target=prod_run.target, go=True, checksums={"other": "bundle"})
    assert _gate_reasons(prod_run, "preflight"), "a preflight of other checksums is not evidence for this bundle"
    PreflightReport.objects.create(target=prod_run.target, go=True, checksums=prod_run.checksums)
    assert not _gate_reasons(prod_run, "preflight")


def test_a_lead_can_override_the_preflight_gate_with_a_reason_and_it_is_audited(prod_run, lead):
    from controlpanel.core.models import AuditEvent

    engine.record_override(prod_run, "preflight", lead, "preflight host unreachable; checked by hand")
    assert not _gate_reasons(prod_run, "preflight")
    assert AuditEvent.objects.filter(action="gate.override", detail__gate="preflight").exists()


def test_a_rehearsal_that_passed_without_its_evidence_does_not_open_the_gate(prod_run):
    from controlpanel.safety.models import Rehearsal

    Rehearsal.objects.create(target=prod_run.target, bundle_dir=prod_run.bundle_dir, checksums=prod_run.checksums,
                             passed=True, status=Rehearsal.Status.PASSED, report={"passed": True, "criteria": [
                                 {"key": "isolation", "title": "Complete isolation", "met": None, "blocking": True,
                                  "reason": "probes crashed: column \"is_default\" does not exist"},
                                 {"key": "size", "title": "Size growth", "met": False, "blocking": False}]})
    reasons = _gate_reasons(prod_run, "rehearsal")
    assert reasons and "Complete isolation: probes crashed" in reasons[0]
    Rehearsal.objects.create(target=prod_run.target, bundle_dir=prod_run.bundle_dir, checksums=prod_run.checksums,
                             passed=True, status=Rehearsal.Status.PASSED, report={"passed": True, "criteria": [
                                 {"key": "isolation", "title": "Complete isolation", "met": True, "blocking": True}]})
    assert not _gate_reasons(prod_run, "rehearsal")


def test_an_override_is_shown_on_the_run_page_with_its_lead_and_reason(prod_run, lead, client):
    engine.record_override(prod_run, "rehearsal", lead, "rehearsed by hand on a restored backup")
    client.force_login(lead)
    page = client.get(f"/runs/{prod_run.pk}/").content.decode()
    assert "Gates overridden by a lead" in page
    assert "overridden by lena" in page and "rehearsed by hand on a restored backup" in page


def test_the_rehearsals_per_criterion_verdicts_are_read_by_the_gate(prod_run):
    from controlpanel.safety.models import Rehearsal

    verdict = {"key": "contents", "criterion": "Row contents unchanged", "stage": "after the forward files",
               "passed": False, "blocking": True, "message": "updated_at changed on 100% of audit_reports"}
    Rehearsal.objects.create(target=prod_run.target, bundle_dir=prod_run.bundle_dir, checksums=prod_run.checksums,
                             passed=True, status=Rehearsal.Status.PASSED, report={"verdicts": [verdict]})
    reasons = _gate_reasons(prod_run, "rehearsal")
    assert reasons and "after the forward files: Row contents unchanged: updated_at changed" in reasons[0]
