"""The panel's URLs plus an empty view: the floor a page's latency is compared with (same middleware, session)."""

from django.http import HttpResponse
from django.urls import include, path


def empty(request):
    return HttpResponse("")


urlpatterns = [path("bench/empty/", empty), path("", include("controlpanel.urls"))]
