"""The cockpit pages: O(1) queries per request however far the run went, the state in one line, the refresh rule."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs import cockpit, engine
from controlpanel.runs.models import Attempt, StepEvent


def fake_attempts(run, user, steps, events=5):
    """Mark forward steps succeeded with attempts and log lines, as if they ran (no worker needed here)."""
    for step_def in steps:
        step = run.steps.get(key=step_def.key)
        attempt = Attempt.objects.create(step=step, number=1, requested_by=user, status="succeeded",
                                         started_at=timezone.now(), finished_at=timezone.now())
        StepEvent.objects.bulk_create(StepEvent(attempt=attempt, kind="info", message=f"line {i}")
                                      for i in range(events))
        step.status = "succeeded"
        step.save()


def queries(client, url, **headers) -> int:
    client.get(url, **headers)  # warm caches shared by every viewer
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code in (200, 204), (url, response.status_code)
    return len(captured)


@pytest.mark.django_db
def test_run_page_and_header_queries_do_not_grow_with_the_run(client, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    client.force_login(oncall)
    main = RUNBOOK.main_steps()
    fake_attempts(run, oncall, main[:2])
    early = {name: queries(client, url) for name, url in (("page", f"/runs/{run.pk}/"), ("list", "/runs/"))}
    fake_attempts(run, oncall, main[2:8], events=50)
    late = {name: queries(client, url) for name, url in (("page", f"/runs/{run.pk}/"), ("list", "/runs/"))}
    assert late == early

    steps, attempts = cockpit.load(run)
    header = f"/runs/{run.pk}/live/?seen={cockpit.version(run, steps, attempts)}"
    assert queries(client, header) <= 8


@pytest.mark.django_db
def test_the_state_line_names_the_failed_step_and_its_error(oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    steps, attempts = cockpit.load(run)
    state = cockpit.run_state(run, steps, attempts)
    assert state.tone == "next" and state.next_key == RUNBOOK.main_steps()[0].key

    backup = run.steps.get(key="pre.backup")
    Attempt.objects.create(step=backup, number=1, requested_by=oncall, status="failed",
                           error={"message": "pg_dump: connection refused"})
    backup.status = "failed"
    backup.save()
    steps, attempts = cockpit.load(run)
    state = cockpit.run_state(run, steps, attempts)
    assert state.tone == "bad" and "pg_dump: connection refused" in state.line and state.next_key == "pre.backup"


@pytest.mark.django_db
def test_a_stale_header_reloads_the_page_and_an_unchanged_idle_one_answers_no_content(client, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    client.force_login(oncall)
    steps, attempts = cockpit.load(run)
    seen = cockpit.version(run, steps, attempts)
    assert client.get(f"/runs/{run.pk}/live/?seen={seen}").status_code == 204
    fake_attempts(run, oncall, RUNBOOK.main_steps()[:1])
    response = client.get(f"/runs/{run.pk}/live/?seen={seen}")
    assert response.headers.get("HX-Refresh") == "true"


def test_the_500_page_is_inside_the_layout_without_a_request_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong (500)" in html and 'href="/"' in html and "Migration Control Panel" in html


@pytest.mark.django_db
def test_support_home_opens_on_the_lookup(client, support):
    client.force_login(support)
    response = client.get("/")
    assert response.status_code == 302 and response.url == "/support/"


@pytest.mark.django_db
def test_a_step_page_names_whom_to_call_for_its_own_step(client, oncall, demo_target):
    from controlpanel.support.models import Contact

    Contact.objects.create(area="database", name="Dana DBA", how_to_reach="#db-oncall")
    Contact.objects.create(area="workers", name="Walt Workers", how_to_reach="#workers")
    run = engine.create_run(demo_target, oncall)  # the run's current step is the backup: a database step
    client.force_login(oncall)
    run_page = client.get(f"/runs/{run.pk}/").content.decode()
    workers_page = client.get(f"/runs/{run.pk}/steps/step3.check/").content.decode()
    assert "Dana DBA" in run_page and "Walt Workers" not in run_page
    assert "Who to call (workers)" in workers_page and "Walt Workers" in workers_page
    assert "Dana DBA" not in workers_page
