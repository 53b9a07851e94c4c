"""The on-call engineer's cockpit: thin views over runs.engine; nothing here touches a target database."""

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.timezone import get_current_timezone_name, localtime
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from controlpanel.core import roles
from controlpanel.core.access import requires
from controlpanel.core.shared_render import CSRF_PLACEHOLDER, shared, with_csrf_token
from controlpanel.panels import RUN_PANELS, render_panels
from controlpanel.runbook.definition import RUNBOOK, Kind
from controlpanel.targets.tenancy import OPTIONAL_TENANT_TABLES, ORGANIZATION_TABLES, TENANT_TABLES

from . import cockpit, engine, gates, sqlpreview
from .forms import NewRunForm, OverrideForm
from .models import Attempt, Run, StepCommand, StepEvent, StepRun

LIVE_EVENTS = 200  # events shown in the live log (the newest ones)


def live_log(attempt) -> str:
    """The newest log lines, shared by every viewer: the runner bumps the heartbeat at least once a second
    while it writes events, so (heartbeat, status) identifies a version of the log at most a second old."""
    stamp = lambda moment: moment.timestamp() if moment else 0  # noqa: E731 - keys without spaces
    key = f"live-log:{attempt.pk}:{attempt.status}:{stamp(attempt.heartbeat_at)}:{stamp(attempt.finished_at)}"
    html = cache.get(key)
    if html is None:
        events = reversed(StepEvent.objects.filter(attempt=attempt).order_by("-id")
                          .values_list("kind", "at", "message", "data__lock_retry", "data__quiet")[:LIVE_EVENTS])
        html = render_log(events)
        cache.set(key, html, timeout=60)
    return html


def render_log(events) -> str:
    """The live log as HTML in one pass: it is polled by every viewer every 2 s, so no per-line template."""
    return format_html_join(
        "\n", '<span class="ev-{}{}">{} {} {}</span>',
        ((kind, " ev-retry" if retry else " ev-quiet" if quiet else "", localtime(at).strftime("%H:%M:%S"),
          "RETRY" if retry else kind.upper()[:6], message) for kind, at, message, retry, quiet in events),
    )


@require_GET
@requires(roles.VIEW_RUNS)
def run_list(request):
    runs = Run.objects.select_related("target", "created_by").order_by("-created_at")
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    runs = list(page.object_list)
    states = cockpit.states_for(runs)
    for run in runs:
        run.state = states[run.pk]
    return render(request, "runs/list.html", {"page": page, "runs": runs})


@requires(roles.OPERATE_RUNS)
def run_new(request):
    form = NewRunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = engine.create_run(form.cleaned_data["target"], request.user, request=request,
                                    window_start=form.cleaned_data["window_start"],
                                    window_end=form.cleaned_data["window_end"])
        except engine.StepRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Run {run.pk} created on {run.target.name}; bundle checksums pinned.")
            return redirect("runs:detail", run_id=run.pk)
    return render(request, "runs/new.html", {"form": form})


def _timeline(run):
    steps = {
        s.key: s
        for s in run.steps.select_related("signed_off_by").prefetch_related(
            Prefetch("attempts", queryset=Attempt.objects.select_related("requested_by").order_by("-number"))
        )
    }
    phases = []
    for phase in RUNBOOK.phases:
        rows = []
        for step_def in phase.steps:
            step = steps.get(step_def.key)
            if step is None:
                continue
            attempts = list(step.attempts.all())
            rows.append({"def": step_def, "step": step, "attempt": attempts[0] if attempts else None,
                         "attempts": len(attempts)})
        phases.append({"phase": phase, "rows": rows})
    return phases


@require_GET
@requires(roles.VIEW_RUNS)
def run_detail(request, run_id):
    run = get_object_or_404(Run.objects.select_related("target", "created_by"), pk=run_id)
    return render(request, "runs/detail.html", {"run": run, "body": run_page_body(request, run)})


def run_page_body(request, run) -> str:
    """The run page below the layout, rendered once per (run state, viewer kind, time zone) every
    settings.SHARED_RENDER_SECONDS and shared (core/shared_render.py): 100 viewers cost one render, not 100.
    What differs per viewer is in the key — the role's controls, a lead's own approvals (no self-approval), the
    viewer's time zone — and the CSRF token, put in per request. A request carrying messages (just after an
    action) renders afresh: it sees its change."""
    cockpit_context = _cockpit_context(run)
    role = roles.role_of(request.user)
    viewer = f"user{request.user.pk}" if role == roles.LEAD else str(role).replace(" ", "_")
    key = (f"run-page:{run.pk}:{cockpit_context['cockpit_version']}:{viewer}:{request.user.is_staff}:"
           f"{get_current_timezone_name()}")

    def render_body() -> str:
        context = {
            "run": run,
            "phases": _timeline(run),
            "production_blockers": gates.production_gates(run),
            "overrides": run.overrides.select_related("lead").order_by("at"),
            "override_form": OverrideForm(),
            "panels": render_panels(RUN_PANELS, request, run),
            "csrf_token": CSRF_PLACEHOLDER,
        } | cockpit_context
        return render_to_string("runs/_detail_body.html", context, request)

    html = shared(key, settings.SHARED_RENDER_SECONDS, render_body, anew=bool(len(messages.get_messages(request))))
    return with_csrf_token(request, html)


def _cockpit_context(run, step_key=None) -> dict:
    """The header: on the run page the step to act on; on a step page the next one once this one succeeded."""
    steps, attempts = cockpit.load(run)
    state = cockpit.run_state(run, steps, attempts, page_step=step_key)
    if step_key is None:
        next_key = state.next_key
        poll_url = reverse("runs:live", args=[run.pk])
    else:
        done = steps[step_key].status == StepRun.Status.SUCCEEDED
        next_key = cockpit.next_after(steps, step_key) if done else None
        poll_url = None
    return {"state": state, "next_key": next_key, "next_title": RUNBOOK.step(next_key).title if next_key else "",
            "cockpit_version": cockpit.version(run, steps, attempts), "poll_url": poll_url}


@require_GET
@requires(roles.VIEW_RUNS)
def run_live(request, run_id):
    """The run page's polled header; reloads the page when a step changed state since it was rendered."""
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    context = _cockpit_context(run)
    seen = request.GET.get("seen")
    if seen and seen != context["cockpit_version"]:
        return HttpResponseClientRefresh()
    if seen and context["state"].tone != "active":
        return HttpResponse(status=204)
    return render(request, "runs/_cockpit.html", {"run": run} | context)


def _step_context(request, run, key, live=False):
    step_def = RUNBOOK.step(key)
    step = get_object_or_404(StepRun, run=run, key=key)
    attempt = engine.current_attempt(step)
    log_html = live_log(attempt) if attempt else ""
    context = {
        "run": run, "def": step_def, "step": step, "attempt": attempt, "log_html": log_html,
        "can_act": request.user.has_perm(roles.perm(step_def.acts)),
        "can_lead": request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)),
        "live_version": live_version(run, step, attempt),
    }
    if live:  # the polled fragment: a constant, small number of queries
        return context
    return context | {
        "blockers": gates.blockers(run, key, request.user) if not step.is_active else [],
        "checklist": engine.checklist_state(run, key) if step_def.kind == Kind.CHECKLIST else None,
        "command": StepCommand.objects.command_for(run, step_def) if step_def.kind == Kind.COMMAND else None,
        "table_choices": TENANT_TABLES + OPTIONAL_TENANT_TABLES + ORGANIZATION_TABLES,
    }


def live_version(run, step, attempt) -> str:
    """What the parts of the step page outside the live area depend on (checklist, actions, blockers)."""
    # queued -> running counts: the header above the live area says which (one reload when the worker starts).
    return f"{step.status}-{attempt.number if attempt else 0}-{run.status}"


def _actions(context) -> dict:
    """Which controls the step page offers, from the step's kind and state."""
    step, step_def = context["step"], context["def"]
    manual = step_def.kind == Kind.COMMAND and context["command"] is None
    repeatable = step_def.kind == Kind.TABLE_ACTION
    verifiable = step_def.kind == Kind.CHECKLIST and any(item.verifier for item in step_def.items)
    start = None
    if not manual and (step.status != StepRun.Status.SUCCEEDED or repeatable):
        if step_def.kind != Kind.CHECKLIST or verifiable:
            start = {
                "interrupted": "Resume", "paused": "Resume", "failed": "Retry", "cancelled": "Retry",
            }.get(step.status, "Verify the items the panel can check" if verifiable else "Start")
    return {
        "start": start,
        "sign_off": manual and step.status != StepRun.Status.SUCCEEDED,
        "table": repeatable and "rls" in step_def.key,
        "recover": step.status in (StepRun.Status.INTERRUPTED, StepRun.Status.FAILED, StepRun.Status.CANCELLED),
        "mark_done": context["can_lead"] or not engine.mark_done_needs_lead(step_def),
    }


@require_GET
@requires(roles.VIEW_RUNS)
def step_detail(request, run_id, key):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    try:
        context = _step_context(request, run, key)
    except KeyError:
        raise Http404(f"There is no step “{key}” in the runbook.") from None
    context["actions"] = _actions(context)
    context |= _cockpit_context(run, key)
    if context["def"].file:
        context["sql"] = sqlpreview.preview(run, context["def"].file)
    return render(request, "runs/step.html", context)


@require_GET
@requires(roles.VIEW_RUNS)
def step_live(request, run_id, key):
    """The polled fragment: status, progress, locks, newest log lines.

    When the step has changed state since the page was rendered (it ended, or someone else started it), the rest
    of the page is stale too: the answer reloads the page. An idle step that did not change answers 204 (no swap).
    """
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    try:
        context = _step_context(request, run, key, live=True)
    except KeyError:
        raise Http404(f"There is no step “{key}” in the runbook.") from None
    seen = request.GET.get("seen")
    if seen and seen != context["live_version"]:
        return HttpResponseClientRefresh()
    if seen and not context["step"].is_active:
        return HttpResponse(status=204)
    # Shared by the step's viewers: anew when the attempt's heartbeat (its progress, locks and log) moved on.
    attempt = context["attempt"]
    beat = attempt.heartbeat_at.timestamp() if attempt and attempt.heartbeat_at else 0
    cache_key = (f"step-live:{run.pk}:{key}:{context['live_version']}:{beat}:{context['can_act']}:"
                 f"{context['can_lead']}:{get_current_timezone_name()}")
    html = shared(cache_key, settings.SHARED_RENDER_SECONDS, lambda: render_to_string(
        "runs/_live.html", context | {"csrf_token": CSRF_PLACEHOLDER}, request))
    return HttpResponse(with_csrf_token(request, html))


def _back(run, key):
    return redirect(reverse("runs:step", args=[run.pk, key]))


def _act(request, run_id, key, action):
    run = get_object_or_404(Run.objects.select_related("target"), pk=run_id)
    try:
        RUNBOOK.step(key)
    except KeyError:
        raise Http404(f"There is no step “{key}” in the runbook.") from None
    try:
        message = action(run)
    except engine.StepRefused as exc:
        messages.error(request, str(exc))
    else:
        if message:
            messages.success(request, message)
    return _back(run, key)


@require_POST
@requires(roles.OPERATE_RUNS)
def step_start(request, run_id, key):
    def start(run):
        params = {"table": request.POST["table"]} if request.POST.get("table") else None
        attempt = engine.start_step(run, key, request.user, params=params, request=request,
                                    confirm_target=request.POST.get("confirm_target"),
                                    resume=request.POST.get("resume") == "1", rerun=request.POST.get("rerun") == "1")
        return f"“{RUNBOOK.step(key).title}” queued (attempt {attempt.number})."

    return _act(request, run_id, key, start)


@require_POST
@requires(roles.OPERATE_RUNS)
def step_cancel(request, run_id, key):
    return _act(request, run_id, key, lambda run: engine.cancel_step(run, key, request.user, request=request)
                or "Cancel requested: the statement is cancelled and its transaction rolled back.")


@require_POST
@requires(roles.OPERATE_RUNS)
def step_pause(request, run_id, key):
    return _act(request, run_id, key, lambda run: engine.pause_step(run, key, request.user, request=request)
                or "Pause requested: committed batches are kept; resume continues where it stopped.")


@require_POST
@requires(roles.OPERATE_RUNS)
def step_mark_done(request, run_id, key):
    return _act(request, run_id, key, lambda run: engine.mark_done(
        run, key, request.user, request.POST.get("reason", ""), request=request) or "Step marked done.")


@require_POST
@requires(roles.OPERATE_RUNS)
def step_sign_off(request, run_id, key):
    return _act(request, run_id, key, lambda run: engine.sign_off(
        run, key, request.user, request.POST.get("note", ""), request=request) or "Signed off.")


@require_POST
@requires(roles.OPERATE_RUNS)
def step_investigate(request, run_id, key):
    return _act(request, run_id, key, lambda run: engine.flag_for_investigation(
        run, key, request.user, request.POST.get("note", ""), request=request) or "Flagged for investigation.")


@require_POST
@requires(roles.OPERATE_RUNS)
def checklist_tick(request, run_id, key, item):
    return _act(request, run_id, key, lambda run: engine.tick(
        run, key, item, request.user, request.POST.get("note", ""), request=request) and "Ticked.")


@require_POST
@requires(roles.OPERATE_RUNS)
def run_abandon(request, run_id):
    run = get_object_or_404(Run, pk=run_id)
    try:
        engine.abandon_run(run, request.user, request.POST.get("reason", ""), request=request)
        messages.success(request, f"Run #{run.pk} abandoned: a new run can be created on {run.target.name}.")
    except engine.StepRefused as exc:
        messages.error(request, str(exc))
    return redirect("runs:detail", run_id=run.pk)


@require_POST
@requires(roles.LEAD_ACTIONS)
def gate_override(request, run_id):
    run = get_object_or_404(Run, pk=run_id)
    form = OverrideForm(request.POST)
    if not form.is_valid():
        messages.error(request, "An override needs a gate and a reason of at least 10 characters.")
    else:
        try:
            engine.record_override(run, form.cleaned_data["gate"], request.user, form.cleaned_data["reason"],
                                   request=request)
            messages.success(request, "Override recorded.")
        except engine.StepRefused as exc:
            messages.error(request, str(exc))
    return redirect("runs:detail", run_id=run.pk)
