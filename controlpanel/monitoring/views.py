"""Monitoring pages: health history and charts, troubleshooting results, post-migration tasks.

Pages only render stored rows; "check now" and "refresh" dispatch Celery tasks (no target SQL here).
"""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from controlpanel.core import audit, roles
from controlpanel.core.access import requires
from controlpanel.targets.models import Target

from . import dashboard, postmigration
from .charts import table_html
from .models import HealthCheck, PostMigrationTask, TroubleshootingResult

QUEUE_DOWN = "The task queue (Redis) is unavailable: nothing was queued. Try again when it is back."


@requires(roles.VIEW_RUNS)
def index(request):
    targets = list(Target.objects.all())
    for target in targets:
        target.latest_check = HealthCheck.objects.filter(target=target).order_by("-checked_at", "-id").first()
    return render(request, "monitoring/index.html", {"targets": targets})


@requires(roles.VIEW_RUNS)
def target_detail(request, name):
    target = get_object_or_404(Target, name=name)
    checks = dashboard.history(target)
    charts = dashboard.target_charts(target, checks)
    for chart in charts:
        chart.table = table_html(chart)
    latest = checks[-1] if checks else None
    return render(request, "monitoring/target.html", {
        "target": target, "charts": charts, "latest": latest, "recent": list(reversed(checks))[:50],
        "total_checks": HealthCheck.objects.filter(target=target).count(),
    })


@require_POST
@requires(roles.OPERATE_RUNS)
def check_now(request, name):
    from .tasks import health_check

    target = get_object_or_404(Target, name=name)
    try:
        health_check.delay(target.pk)
    except Exception:  # broker down
        messages.error(request, QUEUE_DOWN)
        return redirect("monitoring:target", name=target.name)
    audit.record("monitoring.check", request=request, obj=target)
    messages.info(request, f"Health check of {target.name} queued; reload in a few seconds to see it.")
    return redirect("monitoring:target", name=target.name)


def _latest_result(target):
    return TroubleshootingResult.objects.filter(target=target).order_by("-requested_at", "-id").first()


@requires(roles.VIEW_RUNS)
def troubleshooting(request, name):
    target = get_object_or_404(Target, name=name)
    context = {"target": target, "result": _latest_result(target)}
    if request.htmx:
        return render(request, "monitoring/_troubleshooting_result.html", context)
    return render(request, "monitoring/troubleshooting.html", context)


@require_POST
@requires(roles.OPERATE_RUNS)
def troubleshooting_refresh(request, name):
    from .tasks import refresh_troubleshooting

    target = get_object_or_404(Target, name=name)
    with transaction.atomic():
        result = TroubleshootingResult.objects.create(target=target, requested_by=request.user)
        audit.record("monitoring.troubleshooting", request=request, obj=target, result=result.pk)
    try:
        refresh_troubleshooting.delay(result.pk)
    except Exception:  # broker down: the row says so instead of polling forever
        result.status, result.error = TroubleshootingResult.Status.FAILED, QUEUE_DOWN
        result.save(update_fields=["status", "error"])
        messages.error(request, QUEUE_DOWN)
    if request.htmx:
        return render(request, "monitoring/_troubleshooting_result.html", {"target": target, "result": result})
    return redirect("monitoring:troubleshooting", name=target.name)


@require_POST
@requires(roles.OPERATE_RUNS)
def task_done(request, task_id):
    task = get_object_or_404(PostMigrationTask.objects.select_related("run"), pk=task_id)
    done = request.POST.get("done")
    if done not in ("1", "0"):
        return HttpResponseBadRequest("done must be 1 or 0")
    postmigration.set_done(task, request.user, done == "1", request=request)
    following = request.POST.get("next", "")
    if following and url_has_allowed_host_and_scheme(following, allowed_hosts={request.get_host()}):
        return redirect(following)
    return redirect("runs:detail", run_id=task.run_id)
