from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
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

    return render(request, "core/home.html", home_context(request))
