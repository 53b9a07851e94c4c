"""Leads' pages: history, a run's timeline, comparison, exports, audit log; approvals and escalations."""

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlpanel.core import audit, csvsafe, roles
from controlpanel.core.access import requires
from controlpanel.core.models import AuditEvent
from controlpanel.runs.engine import StepRefused
from controlpanel.runs.models import Run, StepRun

from . import approvals, escalation, gantt, reports, summaries, timeline
from .forms import AuditFilter, DecisionForm, EscalateForm, HistoryFilter
from .models import Approval

HISTORY_PAGE = 25
AUDIT_PAGE = 50


def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def _querystring(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def filtered_runs(data: dict):
    runs = Run.objects.select_related("target", "created_by")
    if data.get("target"):
        runs = runs.filter(target=data["target"])
    if data.get("environment"):
        runs = runs.filter(target__environment=data["environment"])
    if data.get("status"):
        runs = runs.filter(status=data["status"])
    if data.get("since"):
        runs = runs.filter(created_at__gte=_day_start(data["since"]))
    if data.get("until"):
        runs = runs.filter(created_at__lt=_day_start(data["until"] + timedelta(days=1)))
    if data.get("person"):
        person = get_user_model().objects.filter(username=data["person"]).values_list("pk", flat=True).first()
        # Runs the person created or started a step in; the IN (subquery) is hashed once, not probed per run.
        acted = StepRun.objects.filter(attempts__requested_by_id=person).values("run_id")
        runs = runs.filter(Q(created_by_id=person) | Q(pk__in=acted)) if person else runs.none()
    return runs.order_by("-created_at", "-id")


@requires(roles.LEAD_ACTIONS)
def history(request):
    form = HistoryFilter(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = Paginator(filtered_runs(data), HISTORY_PAGE).get_page(request.GET.get("page"))
    found = summaries.summaries_for(page.object_list)
    rows = [{"run": run, "summary": found[run.pk]} for run in page.object_list]
    return render(request, "leads/history.html", {"form": form, "page": page, "rows": rows,
                                                  "querystring": _querystring(request)})


@requires(roles.LEAD_ACTIONS)
def run_timeline(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target", "created_by"), pk=run_id)
    rows = timeline.step_rows(run)
    context = {
        "run": run, "rows": rows, "chronology": timeline.chronology(run, rows), "gantt": gantt.gantt_svg(rows),
        "evidence_url": timeline.evidence_url(run),
        "approvals": Approval.objects.filter(run=run).select_related("requested_by", "approved_by"),
        "escalations": run.escalations.select_related("asked_by"),
    }
    return render(request, "leads/timeline.html", context)


@requires(roles.LEAD_ACTIONS)
def compare(request):
    runs = Run.objects.select_related("target", "created_by")
    context = {"recent": runs.order_by("-created_at")[:50], "a_id": request.GET.get("a", ""),
               "b_id": request.GET.get("b", "")}
    a_id, b_id = context["a_id"].strip(), context["b_id"].strip()
    if not (a_id or b_id):
        return render(request, "leads/compare.html", context)
    problems = comparison_problems(runs, a_id, b_id)
    if problems:  # the form again, saying what is wrong with the pair (no bare 404, no silent ignore)
        return render(request, "leads/compare.html", context | {"problems": problems}, status=400)
    context["comparison"] = timeline.compare(runs.get(pk=a_id), runs.get(pk=b_id))
    return render(request, "leads/compare.html", context)


def comparison_problems(runs, a_id: str, b_id: str) -> list[str]:
    problems = []
    for label, value in (("A", a_id), ("B", b_id)):
        if not value:
            problems.append(f"Choose run {label}.")
        elif not value.isdigit():
            problems.append(f"Run {label} must be a run number: “{value[:40]}” is not.")
        elif not runs.filter(pk=value).exists():
            problems.append(f"There is no run #{value} (run {label}).")
    if not problems and int(a_id) == int(b_id):
        problems.append(f"A and B are the same run (#{a_id}): choose two different runs to compare.")
    return problems


EXPORTS = {
    "md": (reports.as_markdown, "text/markdown; charset=utf-8", "report.md"),
    "json": (reports.as_json, "application/json", "report.json"),
    "csv": (reports.steps_csv, "text/csv; charset=utf-8", "steps.csv"),
}


@requires(roles.LEAD_ACTIONS)
def run_export(request, run_id, fmt):
    run = get_object_or_404(Run.objects.select_related("target", "created_by"), pk=run_id)
    if fmt not in EXPORTS:
        raise Http404("Unknown export format")
    build, content_type, suffix = EXPORTS[fmt]
    response = HttpResponse(build(run), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-{suffix}"'
    audit.record("run.export", request=request, obj=run, run=run.pk, format=fmt)
    return response


# --- audit log ----------------------------------------------------------------------------------------

def filtered_audit(data: dict):
    events = AuditEvent.objects.all()
    if data.get("q"):
        q = data["q"]
        events = events.filter(Q(username__icontains=q) | Q(action__icontains=q) | Q(object_repr__icontains=q))
    if data.get("person"):
        events = events.filter(username=data["person"])
    if data.get("action"):
        events = events.filter(action=data["action"])
    if data.get("since"):
        events = events.filter(at__gte=_day_start(data["since"]))
    if data.get("until"):
        events = events.filter(at__lt=_day_start(data["until"] + timedelta(days=1)))
    return events.order_by("-at", "-id")


@requires(roles.LEAD_ACTIONS)
def audit_log(request):
    form = AuditFilter(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = Paginator(filtered_audit(data), AUDIT_PAGE).get_page(request.GET.get("page"))
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    people = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return render(request, "leads/audit.html", {"form": form, "page": page, "actions": actions, "people": people,
                                                "querystring": _querystring(request)})


class _Echo:
    def write(self, value):
        return value


AUDIT_COLUMNS = ("at", "username", "ip", "action", "object_type", "object_id", "object_repr", "detail")


@requires(roles.LEAD_ACTIONS)
def audit_export(request):
    form = AuditFilter(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    # The export shows the log as it was when asked, not the "audit.export" event recorded for it below.
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    events = filtered_audit(data).filter(id__lte=newest).values_list(*AUDIT_COLUMNS)
    writer = csvsafe.writer(_Echo())

    def rows():
        yield writer.writerow(AUDIT_COLUMNS)
        for row in events.iterator(chunk_size=2000):
            yield writer.writerow([value.isoformat() if hasattr(value, "isoformat") else value for value in row])

    audit.record("audit.export", request=request, filters={k: str(v) for k, v in data.items() if v})
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response


# --- approvals and escalations ----------------------------------------------------------------------

@require_POST
@requires(roles.OPERATE_RUNS)
def approval_request(request, run_id, action):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    try:
        approvals.request_approval(run, action, request.user, request.POST.get("note", ""), request=request)
        messages.success(request, "Approval requested: another lead decides on the run page.")
    except StepRefused as exc:
        messages.error(request, str(exc))
    return redirect("runs:detail", run_id=run.pk)


@require_POST
@requires(roles.LEAD_ACTIONS)
def approval_decide(request, approval_id):
    approval = get_object_or_404(Approval.objects.select_related("run", "run__target"), pk=approval_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A decision needs a reason.")
    else:
        try:
            approvals.decide(approval, request.user, approve=form.cleaned_data["decision"] == "approve",
                             seen_digest=form.cleaned_data["digest"], reason=form.cleaned_data["reason"],
                             request=request)
            messages.success(request, "Decision recorded.")
        except StepRefused as exc:
            messages.error(request, str(exc))
    return redirect("runs:detail", run_id=approval.run_id)


@require_POST
@requires(roles.OPERATE_RUNS)
def escalate(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    form = EscalateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you escalate.")
    else:
        try:
            done = escalation.escalate(run, form.cleaned_data["step"], request.user, form.cleaned_data["reason"],
                                       request=request)
            messages.success(request, f"Escalated to level {done.level}: {done.contact}.")
        except (StepRefused, KeyError) as exc:
            messages.error(request, str(exc))
    return redirect("runs:detail", run_id=run.pk)
