"""Leads' approvals of production Step 1 and emergency rollback, and the gates that require them."""

from django.db import transaction
from django.utils import timezone

from controlpanel.core import audit, notify, roles
from controlpanel.runs.errors import StepRefused
from controlpanel.runs.models import Run

from .models import Approval


def needs_approval(run: Run, action: str) -> bool:
    """Production only: staging and demo rehearse freely."""
    return run.is_production


def valid_approval(run: Run, action: str) -> Approval | None:
    """An approval by a lead of exactly this run's pinned checksums."""
    for approval in run.approvals.filter(action=action, decision=Approval.Decision.APPROVED).order_by("-decided_at"):
        if approval.checksums == run.checksums:
            return approval
    return None


def pending_request(run: Run, action: str) -> Approval | None:
    return run.approvals.filter(action=action, decision=Approval.Decision.PENDING).order_by("-requested_at").first()


def missing_approval(run: Run, action: str) -> list[str]:
    if not needs_approval(run, action) or valid_approval(run, action):
        return []
    label = Approval.Action(action).label
    pending = pending_request(run, action)
    if pending:
        return [f"{label} needs a lead's approval: requested by {pending.requested_by}, awaiting a decision "
                "by another lead."]
    return [f"{label} needs a lead's approval of this run's checksums: request it on the run page."]


def step1_gate(run: Run) -> list[str]:
    """A production gate of Step 1 (listed in controlpanel.runs.gates). Approval cannot be overridden."""
    return missing_approval(run, Approval.Action.STEP1)


def rollback_gate(run: Run) -> list[str]:
    """The emergency rollback's gate (listed in controlpanel.runs.gates)."""
    return missing_approval(run, Approval.Action.ROLLBACK)


def request_approval(run: Run, action: str, user, note: str = "", request=None) -> Approval:
    if action not in Approval.Action.values:
        raise StepRefused("Unknown action to approve.")
    if not (user.has_perm(roles.perm(roles.OPERATE_RUNS)) or user.has_perm(roles.perm(roles.LEAD_ACTIONS))):
        raise StepRefused("Your role may not request approvals.")
    if not needs_approval(run, action):
        raise StepRefused("Only production actions need an approval.")
    with transaction.atomic():
        existing = pending_request(run, action)
        if existing:
            return existing
        approval = Approval.objects.create(run=run, action=action, requested_by=user, reason=note,
                                           checksums=run.checksums)
        audit.record("approval.request", user=user, request=request, obj=approval, run=run.pk, kind=action,
                     checksums=run.checksum_digest, note=note)
    # The leads learn of it without watching the page (their home page lists it too).
    notify.notify(f"[{run.target.environment}] Approval requested: {approval.get_action_display()} on "
                  f"{run.target.name}",
                  f"{user.get_username()} asks a lead to approve “{approval.get_action_display()}” for run {run.pk} on "
                  f"{run.target.name} (bundle {run.checksum_digest}).\n\nNote: {note or '(none)'}",
                  run=run.pk, approval=approval.pk, action=action, target=run.target.name)
    return approval


def decide(approval: Approval, user, *, approve: bool, seen_digest: str, reason: str, request=None) -> Approval:
    """A lead approves or refuses; never their own request or their own run; bound to the checksums seen."""
    run = approval.run
    if not user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        raise StepRefused("Only a lead can approve.")
    if user.pk in (approval.requested_by_id, run.created_by_id):
        raise StepRefused("You cannot decide on your own request or on a run you created: ask another lead.")
    if not reason.strip():
        raise StepRefused("Give a reason for the decision.")
    if seen_digest != run.checksum_digest:
        raise StepRefused("The bundle checksums differ from the ones you reviewed: reload the run and review again.")
    with transaction.atomic():
        approval = Approval.objects.select_for_update().get(pk=approval.pk)
        if approval.decision != Approval.Decision.PENDING:
            raise StepRefused(f"This request was already {approval.decision}.")
        approval.decision = Approval.Decision.APPROVED if approve else Approval.Decision.REFUSED
        approval.approved_by = user
        approval.checksums = run.checksums
        approval.decided_at = timezone.now()
        approval.reason = reason
        approval.save()
        audit.record("approval.approve" if approve else "approval.refuse", user=user, request=request,
                     obj=approval, run=run.pk, kind=approval.action, checksums=run.checksum_digest, reason=reason)
    return approval
