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
