"""Safety pages: preflight, rehearsal, emergency and partial rollback. Thin: they show stored results and
dispatch tasks or step attempts; no SQL runs against a target in a request."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from controlpanel.core import audit, roles
from controlpanel.core.access import requires
from controlpanel.core.params import optional_id
from controlpanel.evidence.scorecard import pre_migration_snapshot
from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.runs import engine
from controlpanel.runs.bundle import bundle_dir, checksums
from controlpanel.runs.models import Run
from controlpanel.targets.models import Target
from controlpanel.targets.tenancy import OPTIONAL_TENANT_TABLES, ORGANIZATION_TABLES, TENANT_TABLES

from .gates import latest_rehearsal, rls_exposures
from .models import PreflightReport, Rehearsal, RollbackPreparation
from .rollback import ROLLBACK_KEY, verdict
from .signoffs import sign_off_lint

PARTIAL_KEYS = tuple(step.key for step in RUNBOOK.of_kind(Kind.TABLE_ACTION))
TABLE_CHOICES = TENANT_TABLES + OPTIONAL_TENANT_TABLES + ORGANIZATION_TABLES


def _queue(request, task, *args) -> bool:
    try:
        task.delay(*args)
    except Exception:  # broker down: say so instead of pretending it was queued
        messages.error(request, "The task queue (Redis) is unavailable: nothing was queued.")
        return False
    return True


@requires(roles.VIEW_RUNS)
def index(request):
    targets = list(Target.objects.all())
    for target in targets:
        target.latest_preflight = PreflightReport.objects.filter(target=target).first()
        target.latest_rehearsal = latest_rehearsal(target)
    return render(request, "safety/index.html", {"targets": targets, "exposures": rls_exposures()})


@requires(roles.VIEW_RUNS)
def target_detail(request, name):
    target = get_object_or_404(Target, name=name)
    context = {
        "target": target,
        "preflight": PreflightReport.objects.filter(target=target).first(),
        "rehearsals": Rehearsal.objects.filter(target=target)[:20],
        "exposures": rls_exposures(target),
    }
    return render(request, "safety/target.html", context)


@require_POST
@requires(roles.OPERATE_RUNS)
def preflight_start(request, name):
    from .tasks import preflight_task

    target = get_object_or_404(Target, name=name)
    run = Run.objects.filter(pk=optional_id(request.POST, "run"), target=target).first()
    if _queue(request, preflight_task, target.pk, run.pk if run else None, request.user.pk):
        audit.record("safety.preflight", request=request, obj=target, run=run.pk if run else None)
        messages.info(request, f"Preflight of {target.name} queued; this page shows the report when it is done.")
    return redirect("safety:target", name=target.name)


@requires(roles.VIEW_RUNS)
def preflight_detail(request, report_id):
    report = get_object_or_404(PreflightReport.objects.select_related("target", "run"), pk=report_id)
    return render(request, "safety/preflight.html", {"report": report, "data": report.data})


@require_POST
@requires(roles.LEAD_ACTIONS)
def lint_sign_off(request, report_id, index):
    """A lead signs off one blocking finding of a stored preflight: that rule on that statement's digest."""
    report = get_object_or_404(PreflightReport, pk=report_id)
    check = next((c for c in report.data.get("checks", []) if c["key"] == "locks.blocking"), None)
    blocking = (check or {}).get("detail", {}).get("blocking", [])
    if index >= len(blocking):
        raise Http404("No such blocking finding in this preflight.")
    finding = blocking[index]
    try:
        sign_off_lint(request.user, rule=finding["rule"], file=finding["file"],
                      statement_digest=finding["statement_digest"], reason=request.POST.get("reason", ""),
                      request=request)
    except engine.StepRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Signed off {finding['rule']} on {finding['file']} statement "
                                  f"{finding['statement_index']}; run the preflight again to see it.")
    return redirect("safety:preflight", report_id=report.pk)


@require_POST
@requires(roles.OPERATE_RUNS)
def rehearse_start(request, name):
    from .tasks import rehearse_task

    target = get_object_or_404(Target, name=name)
    run = Run.objects.filter(pk=optional_id(request.POST, "run"), target=target).first()
    directory = bundle_dir(run.bundle_dir if run else None)
    try:
        pinned = checksums(directory)
    except FileNotFoundError as exc:
        messages.error(request, str(exc))
        return redirect("safety:target", name=target.name)
    rehearsal = Rehearsal.objects.create(target=target, run=run, requested_by=request.user,
                                         bundle_dir=str(directory), checksums=pinned)
    if _queue(request, rehearse_task, rehearsal.pk):
        audit.record("safety.rehearse", request=request, obj=target, rehearsal=rehearsal.pk)
        messages.info(request, f"Rehearsal #{rehearsal.pk} of {target.name} queued.")
    else:
        rehearsal.status, rehearsal.report = Rehearsal.Status.FAILED, {"failure": {"message": "not queued"}}
        rehearsal.save(update_fields=["status", "report"])
    return redirect("safety:rehearsal", rehearsal_id=rehearsal.pk)


@requires(roles.VIEW_RUNS)
def rehearsal_detail(request, rehearsal_id):
    rehearsal = get_object_or_404(Rehearsal.objects.select_related("target", "requested_by"), pk=rehearsal_id)
    context = {"rehearsal": rehearsal, "report": rehearsal.report,
               "active": rehearsal.status in (Rehearsal.Status.QUEUED, Rehearsal.Status.RUNNING)}
    template = "safety/_rehearsal_body.html" if request.htmx else "safety/rehearsal.html"
    return render(request, template, context)


# --- emergency rollback --------------------------------------------------------------------------------

@requires(roles.LEAD_ACTIONS)
def rollback_page(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    preparation = RollbackPreparation.objects.filter(run=run).first()
    step = run.steps.get(key=ROLLBACK_KEY)
    context = {
        "run": run, "step": step, "def": RUNBOOK.step(ROLLBACK_KEY), "preparation": preparation,
        "preparing": preparation is not None and preparation.finished_at is None,
        "before": pre_migration_snapshot(run), "verdict": verdict(run),
    }
    return render(request, "safety/rollback.html", context)


@require_POST
@requires(roles.LEAD_ACTIONS)
def rollback_prepare(request, run_id):
    from .tasks import prepare_rollback_task

    run = get_object_or_404(Run, pk=run_id)
    preparation = RollbackPreparation.objects.create(run=run, requested_by=request.user)
    if _queue(request, prepare_rollback_task, preparation.pk):
        messages.info(request, "Counting what the rollback would delete; this page shows it when done.")
    else:
        preparation.delete()
    return redirect("safety:rollback", run_id=run.pk)


@require_POST
@requires(roles.LEAD_ACTIONS)
def rollback_confirm(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    typed = request.POST.get("confirm_target", "")
    if typed != run.target.name:
        audit.record("safety.rollback_refused", request=request, obj=run, typed_length=len(typed))
        messages.error(request, f"Refused: the name you typed does not match the target “{run.target.name}” "
                                "exactly. Nothing was changed.")
        return redirect("safety:rollback", run_id=run.pk)
    try:
        attempt = engine.start_step(run, ROLLBACK_KEY, request.user, confirm_target=typed, request=request)
    except engine.StepRefused as exc:
        messages.error(request, str(exc))
        return redirect("safety:rollback", run_id=run.pk)
    messages.success(request, f"Emergency rollback queued (attempt {attempt.number}); follow its live log here.")
    return redirect("runs:step", run_id=run.pk, key=ROLLBACK_KEY)


# --- partial rollback ----------------------------------------------------------------------------------

@requires(roles.OPERATE_RUNS)
def partial_page(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    actions = []
    for key in PARTIAL_KEYS:
        step_def = RUNBOOK.step(key)
        actions.append({"def": step_def, "step": run.steps.get(key=key), "table": "rls" in key,
                        "allowed": request.user.has_perm(roles.perm(step_def.acts))})
    return render(request, "safety/partial.html", {"run": run, "actions": actions, "tables": TABLE_CHOICES,
                                                   "exposures": rls_exposures(run.target)})


@require_POST
@requires(roles.OPERATE_RUNS)
def partial_start(request, run_id, key):
    if key not in PARTIAL_KEYS:
        raise Http404("not a partial rollback action")
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    params = None
    if "rls" in key:
        table = request.POST.get("table", "")
        if table not in TABLE_CHOICES:
            messages.error(request, "Choose a tenant table.")
            return redirect("safety:partial", run_id=run.pk)
        params = {"table": table}
    typed = request.POST.get("confirm_target", "")
    if typed != run.target.name:
        messages.error(request, f"Refused: type the target name “{run.target.name}” exactly to confirm.")
        return redirect("safety:partial", run_id=run.pk)
    try:
        attempt = engine.start_step(run, key, request.user, params=params, confirm_target=typed, request=request)
    except engine.StepRefused as exc:
        messages.error(request, str(exc))
        return redirect("safety:partial", run_id=run.pk)
    messages.success(request, f"“{RUNBOOK.step(key).title}” queued (attempt {attempt.number}).")
    return redirect("runs:step", run_id=run.pk, key=key)
