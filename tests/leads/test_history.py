"""History with filters and cached summaries, a run's timeline, and two runs compared."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from controlpanel.core import audit
from controlpanel.leads.models import RunSummary
from controlpanel.runs import engine
from controlpanel.runs.models import Run

from .conftest import finish_step


def run_ids(response) -> list[int]:
    return [row["run"].pk for row in response.context["rows"]]


def test_history_lists_runs_with_duration_outcome_and_scorecard(client, cast, finished_run, fake_scorecard):
    client.force_login(cast["lena"])
    response = client.get(reverse("leads:history"))
    assert run_ids(response) == [finished_run.pk]
    summary = response.context["rows"][0]["summary"]
    assert summary.steps_succeeded == 3 and summary.attempts == 3
    assert summary.duration_seconds == pytest.approx(30 * 60)
    assert summary.scorecard["met"] == 2 and summary.scorecard["not_met"] == 1
    html = response.content.decode()
    assert "2/3 met, 1 not met" in html and "1800 s" in html


def test_finished_run_summaries_are_cached(client, cast, finished_run, fake_scorecard, django_assert_max_num_queries):
    client.force_login(cast["lena"])
    client.get(reverse("leads:history"))
    assert RunSummary.objects.filter(run=finished_run, run_status="completed").exists()
    with django_assert_max_num_queries(12):
        client.get(reverse("leads:history"))
    # A status change (e.g. rolled back later) makes the cached summary stale and it is recomputed.
    Run.objects.filter(pk=finished_run.pk).update(status=Run.Status.ROLLED_BACK)
    client.get(reverse("leads:history"))
    assert RunSummary.objects.get(run=finished_run).run_status == "rolled_back"


def test_history_filters(client, cast, make_target, finished_run):
    prod = make_target("prod-h", "production")
    other = engine.create_run(prod, cast["lena"])
    finish_step(other, "pre.backup", cast["alice"])
    Run.objects.filter(pk=other.pk).update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(cast["lena"])
    get = lambda **params: run_ids(client.get(reverse("leads:history"), params))  # noqa: E731
    assert set(get()) == {finished_run.pk, other.pk}
    assert get(environment="production") == [other.pk]
    assert get(target=finished_run.target.pk) == [finished_run.pk]
    assert get(status="completed") == [finished_run.pk]
    assert get(since=(timezone.now() - timedelta(days=2)).date().isoformat()) == [finished_run.pk]
    assert get(until=(timezone.now() - timedelta(days=5)).date().isoformat()) == [other.pk]
    assert set(get(person="alice")) == {finished_run.pk, other.pk}  # alice created one, ran a step of the other
    assert get(person="lena") == [other.pk]
    assert get(person="sam") == []


def test_history_paginates_and_keeps_filters(client, cast, make_target):
    target = make_target("many", "demo")
    for _ in range(30):
        engine.abandon_run(engine.create_run(target, cast["alice"]), cast["alice"], "one open run per target")
    client.force_login(cast["lena"])
    first = client.get(reverse("leads:history"), {"environment": "demo"})
    assert len(first.context["rows"]) == 25
    assert "environment=demo&amp;page=2" in first.content.decode()
    second = client.get(reverse("leads:history"), {"environment": "demo", "page": 2})
    assert len(second.context["rows"]) == 5


def test_timeline_shows_attempts_people_estimates_and_audit(client, cast, finished_run):
    audit.record("gate.override", user=cast["lena"], obj=finished_run, gate="staging", reason="rehearsed twice")
    client.force_login(cast["lena"])
    response = client.get(reverse("leads:timeline", args=[finished_run.pk]))
    html = response.content.decode()
    rows = {row["def"].key: row for row in response.context["rows"]}
    assert rows["step1.schema"]["seconds"] == 540 and rows["step1.schema"]["verdict"] == "within"
    assert rows["pre.assessment"]["attempts"][0]["figures"] == [("total_users", "200"), ("total_reports", "2000")]
    whats = [(e["who"], e["what"]) for e in response.context["chronology"]]
    assert ("alice", "run.create") in whats and ("lena", "gate.override") in whats
    assert ("w1@test", "attempt 1 succeeded") in whats
    assert "#1 by alice on w1@test" in html and "tests: Schema: PASSED" in html


def test_timeline_flags_steps_over_the_estimate(client, cast, make_target):
    run = engine.create_run(make_target("slow", "staging"), cast["alice"])
    finish_step(run, "step1.schema", cast["alice"], seconds=11 * 60)  # runbook says 5–10 min
    client.force_login(cast["lena"])
    rows = {r["def"].key: r for r in client.get(reverse("leads:timeline", args=[run.pk])).context["rows"]}
    assert rows["step1.schema"]["verdict"] == "over"


def test_compare_two_runs(client, cast, make_target, finished_run, fake_scorecard):
    prod = engine.create_run(make_target("prod-c", "production"), cast["alice"])
    finish_step(prod, "pre.assessment", cast["alice"], seconds=45, result={"queries": [
        {"label": "total_users", "columns": ["total_users"], "rows": [[250]]}]})
    client.force_login(cast["lena"])
    response = client.get(reverse("leads:compare"), {"a": finished_run.pk, "b": prod.pk})
    comparison = response.context["comparison"]
    assert comparison["same_checksums"] is True
    steps = {s["def"].key: s for s in comparison["steps"]}
    assert steps["pre.assessment"]["a"]["seconds"] == 30 and steps["pre.assessment"]["b"]["seconds"] == 45
    assert ("total_users", "200", "250") in steps["pre.assessment"]["figures"]
    assert steps["step1.schema"]["b"]["attempts"] == []
    assert [f["title"] for f in comparison["findings"]][:1] == ["Zero data loss"]
    assert 'data-same-checksums="yes"' in response.content.decode()
