"""Production Step 1 and emergency rollback need another lead's approval of the run's exact checksums."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from controlpanel.core import roles
from controlpanel.core.models import AuditEvent
from controlpanel.leads import approvals
from controlpanel.leads.models import Approval
from controlpanel.runs import engine, gates


@pytest.fixture
def prod_run(cast, make_target):
    return engine.create_run(make_target("prod-1", "production"), cast["alice"])


@pytest.fixture
def second_lead(cast):
    user = User.objects.create_user("leo", password="leo-pass-123")
    user.groups.add(roles.ensure_roles()[roles.LEAD])
    return User.objects.get(pk=user.pk)


def approval_reasons(run):
    return [r for r in gates.production_gates(run) if "approval" in r]


def test_step1_gate_is_registered():
    assert approvals.step1_gate in [gate.check for gate in gates.PRODUCTION_GATES]


def test_production_step1_is_blocked_until_a_lead_approves(cast, prod_run):
    assert approval_reasons(prod_run)
    with pytest.raises(engine.StepRefused, match="needs a lead's approval"):
        engine.start_step(prod_run, "step1.schema", cast["alice"], confirm_target=prod_run.target.name)
    request = approvals.request_approval(prod_run, Approval.Action.STEP1, cast["alice"], "window tonight")
    assert "awaiting" in approval_reasons(prod_run)[0]
    approvals.decide(request, cast["lena"], approve=True, seen_digest=prod_run.checksum_digest, reason="staging ok")
    assert approval_reasons(prod_run) == []
    request.refresh_from_db()
    assert request.approved_by == cast["lena"] and request.checksums == prod_run.checksums and request.decided_at
    assert AuditEvent.objects.filter(action="approval.approve", username="lena").exists()


def test_staging_needs_no_approval(cast, make_target):
    run = engine.create_run(make_target("stage-x", "staging"), cast["alice"])
    assert approvals.step1_gate(run) == []
    with pytest.raises(engine.StepRefused, match="Only production"):
        approvals.request_approval(run, Approval.Action.STEP1, cast["alice"])


def test_a_lead_cannot_approve_their_own_request(cast, prod_run, second_lead):
    request = approvals.request_approval(prod_run, Approval.Action.STEP1, cast["lena"])
    with pytest.raises(engine.StepRefused, match="your own request"):
        approvals.decide(request, cast["lena"], approve=True, seen_digest=prod_run.checksum_digest, reason="me")
    approvals.decide(request, second_lead, approve=True, seen_digest=prod_run.checksum_digest, reason="ok")
    assert approval_reasons(prod_run) == []


def test_a_lead_cannot_approve_a_run_they_created(cast, make_target, second_lead):
    run = engine.create_run(make_target("prod-2", "production"), cast["lena"])
    request = approvals.request_approval(run, Approval.Action.STEP1, cast["alice"])
    with pytest.raises(engine.StepRefused, match="run you created"):
        approvals.decide(request, cast["lena"], approve=True, seen_digest=run.checksum_digest, reason="mine")
    assert approval_reasons(run)


def test_self_approval_refused_through_the_page(client, cast, prod_run):
    request = approvals.request_approval(prod_run, Approval.Action.STEP1, cast["lena"])
    client.force_login(cast["lena"])
    response = client.post(reverse("leads:approval_decide", args=[request.pk]),
                           {"decision": "approve", "digest": prod_run.checksum_digest, "reason": "self"}, follow=True)
    assert "cannot decide on your own request" in response.content.decode()
    request.refresh_from_db()
    assert request.decision == Approval.Decision.PENDING


def test_approval_is_bound_to_the_checksums_seen(cast, prod_run):
    request = approvals.request_approval(prod_run, Approval.Action.STEP1, cast["alice"])
    with pytest.raises(engine.StepRefused, match="checksums differ"):
        approvals.decide(request, cast["lena"], approve=True, seen_digest="0123456789ab", reason="ok")
    approvals.decide(request, cast["lena"], approve=True, seen_digest=prod_run.checksum_digest, reason="ok")
    # An approval recorded for other checksums does not count for this run.
    Approval.objects.filter(pk=request.pk).update(checksums={"other.sql": "feed"})
    assert approval_reasons(prod_run)


def test_refusal_keeps_the_gate_closed(cast, prod_run):
    request = approvals.request_approval(prod_run, Approval.Action.STEP1, cast["alice"])
    approvals.decide(request, cast["lena"], approve=False, seen_digest=prod_run.checksum_digest, reason="not yet")
    assert approval_reasons(prod_run) and "request it" in approval_reasons(prod_run)[0]


def test_rollback_gate(cast, prod_run, second_lead):
    assert approvals.rollback_gate(prod_run)
    request = approvals.request_approval(prod_run, Approval.Action.ROLLBACK, cast["lena"], "errors after deploy")
    approvals.decide(request, second_lead, approve=True, seen_digest=prod_run.checksum_digest, reason="agreed")
    assert approvals.rollback_gate(prod_run) == []
    assert approval_reasons(prod_run)  # a rollback approval does not approve Step 1


def test_run_page_panel_offers_request_and_decision(client, cast, prod_run):
    client.force_login(cast["alice"])
    html = client.get(reverse("runs:detail", args=[prod_run.pk])).content.decode()
    assert 'data-panel="approvals"' in html and "Request approval" in html
    client.post(reverse("leads:approval_request", args=[prod_run.pk, "step1"]), {"note": "tonight"})
    assert Approval.objects.filter(run=prod_run, action="step1", requested_by=cast["alice"]).exists()
    client.force_login(cast["lena"])
    html = client.get(reverse("runs:detail", args=[prod_run.pk])).content.decode()
    assert "Approve" in html and prod_run.checksum_digest in html
    pending = Approval.objects.get(run=prod_run)
    client.post(reverse("leads:approval_decide", args=[pending.pk]),
                {"decision": "approve", "digest": prod_run.checksum_digest, "reason": "staging passed"})
    pending.refresh_from_db()
    assert pending.decision == Approval.Decision.APPROVED and pending.approved_by == cast["lena"]


def test_emergency_rollback_cannot_start_without_approval(cast, prod_run, second_lead):
    reasons = gates.blockers(prod_run, "rollback.emergency", cast["lena"])
    assert any("Emergency rollback needs a lead's approval" in r for r in reasons)
    request = approvals.request_approval(prod_run, Approval.Action.ROLLBACK, cast["lena"], "data issue")
    approvals.decide(request, second_lead, approve=True, seen_digest=prod_run.checksum_digest, reason="agreed")
    assert not any("approval" in r for r in gates.blockers(prod_run, "rollback.emergency", cast["lena"]))
