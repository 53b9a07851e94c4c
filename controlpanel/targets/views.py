from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from controlpanel import panels
from controlpanel.core import audit, roles
from controlpanel.core.access import requires
from controlpanel.core.queue import UNAVAILABLE, enqueue

from .models import Target


@require_GET
@requires(roles.VIEW_RUNS)
def target_list(request):
    targets = list(Target.objects.all())
    for target in targets:
        target.links = panels.target_links(request, target)
    return render(request, "targets/list.html", {"targets": targets})


@require_POST
@requires(roles.OPERATE_RUNS)
def check_now(request, name):
    """Queue a connection check; the page shows the stored result (no target SQL in a request)."""
    from .tasks import check_target_task

    target = get_object_or_404(Target, name=name)
    if enqueue(check_target_task, target.pk) is None:
        messages.error(request, UNAVAILABLE)
        return redirect("targets:list")
    audit.record("target.check", request=request, obj=target)
    messages.info(request, f"Connection check for {target.name} queued; this page shows the result.")
    return redirect("targets:list")
