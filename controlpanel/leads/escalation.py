"""Whom to call when a step fails: the area's contacts and the next escalation level; escalating records it."""

from django.db import transaction

from controlpanel.core import audit, notify, roles
from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs.engine import StepRefused
from controlpanel.runs.models import Run, StepRun
from controlpanel.support.models import Contact, EscalationLevel

from .models import Escalation

NEEDS_HELP = (StepRun.Status.FAILED, StepRun.Status.INTERRUPTED)


def contacts_for(step_key: str) -> list[Contact]:
    return list(Contact.objects.filter(area=RUNBOOK.step(step_key).area))


def next_level(run: Run, step_key: str) -> EscalationLevel | None:
    """Level 1 first, then one above the highest level already asked for this step; None past the top."""
    highest = (Escalation.objects.filter(run=run, step_key=step_key).order_by("-level")
               .values_list("level", flat=True).first()) or 0
    return EscalationLevel.objects.filter(level__gt=highest).order_by("level").first()


def help_for_failed_steps(run: Run) -> list[dict]:
    rows = []
    for step in run.steps.filter(status__in=NEEDS_HELP):
        rows.append({
            "step": step, "def": step.definition, "contacts": contacts_for(step.key),
            "next_level": next_level(run, step.key),
            "escalations": list(Escalation.objects.filter(run=run, step_key=step.key).select_related("asked_by")),
        })
    return rows


def escalate(run: Run, step_key: str, user, reason: str, request=None) -> Escalation:
    if not (user.has_perm(roles.perm(roles.OPERATE_RUNS)) or user.has_perm(roles.perm(roles.LEAD_ACTIONS))):
        raise StepRefused("Your role may not escalate.")
    if not reason.strip():
        raise StepRefused("Say why you escalate: it is sent to the people asked.")
    step_def = RUNBOOK.step(step_key)
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run.pk)  # two clicks must not ask the same level twice
        level = next_level(run, step_key)
        if level is None:
            raise StepRefused("Every escalation level has already been asked for this step.")
        area_contacts = ", ".join(f"{c.name} ({c.role})" if c.role else c.name for c in contacts_for(step_key))
        who = level.who + (f"; {step_def.area} contacts: {area_contacts}" if area_contacts else "")
        escalation = Escalation.objects.create(run=run, step_key=step_key, level=level.level, contact=who[:300],
                                               reason=reason, asked_by=user)
        audit.record("step.escalate", user=user, request=request, obj=escalation, run=run.pk, step=step_key,
                     level=level.level, contact=escalation.contact, reason=reason)
    subject = f"[{run.target.environment}] Escalation level {level.level}: {step_def.title} on {run.target.name}"
    body = (f"{user.get_username()} asks {escalation.contact} for help with “{step_def.title}” "
            f"(run {run.pk}, target {run.target.name}).\n\nWhy: {reason}")
    delivered = notify.notify(subject, body, run=run.pk, step=step_key, level=level.level, target=run.target.name)
    Escalation.objects.filter(pk=escalation.pk).update(delivered_via=delivered)
    escalation.delivered_via = delivered
    return escalation
