"""Checklist verification: the panel checks the items it can and records the evidence as ticks."""

from django.utils import timezone

from .. import verifiers
from ..models import ChecklistTick
from .base import StepFailed


def verify_checklist(ctx) -> dict:
    outcomes = {}
    for item in ctx.step.items:
        if not item.verifier:
            continue
        ok, evidence = getattr(verifiers, item.verifier)(ctx)
        outcomes[item.key] = {"ok": ok, "evidence": evidence}
        ctx.sink.emit("output", f"{'✔' if ok else '✘'} {item.text}: {evidence.get('summary', '')}")
        if ok:
            ChecklistTick.objects.update_or_create(
                run=ctx.run, step_key=ctx.step.key, item_key=item.key,
                defaults={"ticked_by": None, "ticked_at": timezone.now(), "verified": True, "evidence": evidence},
            )
        else:
            ChecklistTick.objects.filter(run=ctx.run, step_key=ctx.step.key, item_key=item.key).delete()
    failed = [key for key, outcome in outcomes.items() if not outcome["ok"]]
    if failed:
        raise StepFailed(f"Not verified: {', '.join(failed)}", items=outcomes)
    return {"items": outcomes}
