"""Support's pages: membership lookups answered by a Celery task, the page polls the stored result."""

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from controlpanel.core import audit, csvsafe, roles
from controlpanel.core.access import requires

from .forms import LookupForm
from .models import LookupResult

log = logging.getLogger(__name__)
STORED_PAGE = 50


def dispatch(lookup: LookupResult) -> None:
    from .tasks import run_lookup

    def send():
        try:
            run_lookup.apply_async(args=[lookup.pk], retry=False)
        except Exception as exc:  # broker down: say so on the result page instead of polling forever
            log.warning("lookup queue unavailable: %s", type(exc).__name__)
            LookupResult.objects.filter(pk=lookup.pk).update(
                status=LookupResult.Status.FAILED, finished_at=timezone.now(),
                error="The task queue (Redis) is unavailable: try again when it is back.")

    transaction.on_commit(send)


@requires(roles.LOOKUP_MEMBERSHIPS)
def lookup(request):
    form = LookupForm(request.POST or None, initial={"kind": request.GET.get("kind", LookupResult.Kind.PERSON)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        LookupResult.purge_expired()
        with transaction.atomic():
            found = LookupResult.objects.create(requester=request.user, target=data["target"], kind=data["kind"],
                                                query=(data.get("query") or "").strip(), page=data.get("page") or 1)
            audit.record("support.lookup", request=request, obj=data["target"], kind=found.kind, query=found.query,
                         page=found.page)
            dispatch(found)
        return redirect("support:result", lookup_id=found.pk)
    recent = LookupResult.objects.filter(requester=request.user).select_related("target")[:10]
    return render(request, "support/lookup.html", {"form": form, "recent": recent})


def _own_lookup(request, lookup_id) -> LookupResult:
    return get_object_or_404(LookupResult.objects.select_related("target"), pk=lookup_id, requester=request.user)


@requires(roles.LOOKUP_MEMBERSHIPS)
def result(request, lookup_id):
    found = _own_lookup(request, lookup_id)
    context = {"lookup": found}
    if found.kind == LookupResult.Kind.WITHOUT_MEMBERSHIP and found.status == LookupResult.Status.DONE:
        context["page"] = Paginator(found.result.get("users", []), STORED_PAGE).get_page(request.GET.get("page"))
    if request.htmx:
        return render(request, "support/_result.html", context)
    return render(request, "support/result.html", context)


@requires(roles.LOOKUP_MEMBERSHIPS)
def export(request, lookup_id):
    """CSV of the users without membership found by a finished lookup (stored rows, no target query)."""
    found = _own_lookup(request, lookup_id)
    if found.kind != LookupResult.Kind.WITHOUT_MEMBERSHIP or found.status != LookupResult.Status.DONE:
        messages.error(request, "Only a finished 'users without membership' lookup can be exported.")
        return redirect("support:result", lookup_id=found.pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="users-without-membership-{found.target.name}.csv"'
    writer = csvsafe.writer(response)
    writer.writerow(["user_id", "email", "created_at"])
    for user in found.result.get("users", []):
        writer.writerow([user["id"], user["email"], user["created_at"]])
    audit.record("support.export", request=request, obj=found.target, kind=found.kind,
                 rows=len(found.result.get("users", [])))
    return response
