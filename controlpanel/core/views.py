from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from .health import service_status


@login_not_required
@require_GET
def health(request):
    status = service_status()
    return JsonResponse(status, status=200 if status["ok"] else 503)


@require_GET
def home(request):
    from controlpanel.core.home import home_context

    from . import roles

    # Support's whole job is the lookup: their home opens on it.
    if request.user.has_perm(roles.perm(roles.LOOKUP_MEMBERSHIPS)) and \
            not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return redirect("support:lookup")
    return render(request, "core/home.html", home_context(request))
