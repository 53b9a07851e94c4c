"""The evidence page of a run: scorecard, reconciliation, validation, RLS audit, probes, timings, locks.

Pages only render stored evidence; "collect evidence" dispatches a Celery task.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from controlpanel.core import audit, roles
from controlpanel.core.access import requires
from controlpanel.core.queue import UNAVAILABLE, enqueue
from controlpanel.runs.models import Run

from . import locks
from .models import SignOff
from .reconcile import compare_schema, size_growth
from .scorecard import (
    CRITERIA_BY_KEY,
    build_scorecard,
    evidence_context,
    latest_snapshot,
    size_budget_percent,
    validation_categories,
)
from .tasks import collect_evidence_task

ACCESS_ROWS = 300  # differences shown on the page (the stored diff has them all)


@requires(roles.VIEW_RUNS)
def run_evidence(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    ctx = evidence_context(run)
    before, after = ctx["before"], ctx["after"]
    rolled = latest_snapshot(run, "after_rollback")
    context = {
        "run": run,
        "scorecard": build_scorecard(run, ctx),
        "ctx": ctx,
        "validation": validation_categories(run),
        "growth": size_growth(before.data, after.data, size_budget_percent()) if before and after else None,
        "rollback_diff": compare_schema(before.data, rolled.data) if before and rolled else None,
        "rollback_snapshot": rolled,
        "locks": locks.judge_run_locks(run),
        "probe_failures": [c for c in (ctx["probes"].data.get("cells", []) if ctx["probes"] else [])
                           if c["status"] not in ("ok", "n/a")],
        "can_operate": request.user.has_perm(roles.perm(roles.OPERATE_RUNS)),
    }
    differences = ((ctx["access"].data.get("diff") or {}).get("differences", []) if ctx["access"] else [])
    blocking_first = sorted(differences, key=lambda d: d["kind"] not in ("exposure", "loss", "cannot_measure"))
    context["access_differences"] = blocking_first[:ACCESS_ROWS]
    context["access_more"] = len(differences) if len(differences) > ACCESS_ROWS else 0
    return render(request, "evidence/run.html", context)


@require_POST
@requires(roles.OPERATE_RUNS)
def collect(request, run_id):
    run = get_object_or_404(Run, pk=run_id)
    if enqueue(collect_evidence_task, run.pk) is None:
        messages.error(request, UNAVAILABLE)
    else:
        audit.record("evidence.collect", request=request, obj=run)
        messages.success(request, "Evidence collection queued; results appear here when it finishes.")
    return redirect("evidence:run", run_id=run.pk)


@require_POST
@requires(roles.OPERATE_RUNS)
def sign_off(request, run_id, criterion):
    run = get_object_or_404(Run, pk=run_id)
    definition = CRITERIA_BY_KEY.get(criterion)
    if definition is None or not definition.manual:
        raise Http404("not a manual criterion")
    met = request.POST.get("met") == "1"
    note = request.POST.get("note", "").strip()[:2000]
    if not note:
        messages.error(request, "A sign-off needs a note saying what was checked.")
        return redirect(reverse("evidence:run", args=[run.pk]) + f"#{criterion}")
    signoff = SignOff.objects.create(run=run, criterion=criterion, met=met, note=note, signed_by=request.user)
    audit.record("evidence.sign_off", request=request, obj=run, criterion=criterion, met=met, note=note,
                 signoff=signoff.pk)
    messages.success(request, f"“{definition.text}” signed off as {'met' if met else 'not met'}.")
    return redirect(reverse("evidence:run", args=[run.pk]) + f"#{criterion}")
