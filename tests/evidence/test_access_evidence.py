"""The access diff as run evidence: the 'before' map with the data assessment, the diff after Step 5, the page."""

import pytest
from django.urls import reverse

from controlpanel.evidence.collect import collect_evidence, take_access_before
from controlpanel.evidence.models import EvidenceReport
from controlpanel.evidence.scorecard import build_scorecard
from controlpanel.runs import engine
from tests.helpers import targets as target_support

from .conftest import execute


@pytest.fixture(autouse=True)
def _sample(settings):
    settings.ACCESS_ALL_USERS_UP_TO = 10
    settings.ACCESS_SAMPLE_USERS = 12


def test_without_a_before_map_the_access_diff_is_not_met_with_its_reason(db, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    (report,) = collect_evidence(run, kinds=[EvidenceReport.Kind.ACCESS])
    assert report.passed is False and report.error.startswith("cannot measure: no 'before' access map")
    lines = {line["key"]: line for line in build_scorecard(run)}
    assert lines["access"]["status"] == "not_met" and lines["access"]["evidence"]["cannot_measure"] is True
    assert lines["isolation"]["status"] == "not_met" and lines["history"]["status"] == "not_met"


def test_the_shared_organization_is_named_on_the_evidence_page(db, oncall, lead, demo_target, target_dsn, client):
    run = engine.create_run(demo_target, oncall)
    before = take_access_before(run)
    assert before.passed and len(before.data["subjects"]) == 15
    dsn = target_dsn(demo_target)
    target_support.apply_bundle(dsn)
    execute(dsn, """
        SET session_replication_role = replica;
        INSERT INTO public.organizations (slug, name) VALUES ('accessdiff-shared', 'Shared') ON CONFLICT DO NOTHING;
        INSERT INTO public.organization_memberships (organization_id, user_id, role, status)
            SELECT o.id, u.id, 'member', 'active' FROM auth.users u, public.organizations o
            WHERE o.slug = 'accessdiff-shared' ON CONFLICT DO NOTHING;
        UPDATE public.audit_reports SET organization_id = (SELECT id FROM public.organizations
                                                           WHERE slug = 'accessdiff-shared');
    """)
    (report,) = collect_evidence(run, kinds=[EvidenceReport.Kind.ACCESS])
    assert report.passed is False and report.data["before_report"] == before.pk
    reads = [d for d in report.data["diff"]["differences"]
             if d["kind"] == "exposure" and d["relation"] == "public.audit_reports" and d["action"] == "read"]
    assert len(reads) == 12 and all(d["after"] == 2000 and d["gained_examples"] for d in reads)
    assert all("keys" not in c for c in report.data["after"]["cells"])  # the stored "after" map is compact

    lines = {line["key"]: line for line in build_scorecard(run)}
    assert lines["access"]["status"] == "not_met" and lines["isolation"]["status"] == "not_met"
    named = lines["access"]["evidence"]["exposures"]
    assert any(d["relation"] == "public.audit_reports" and d["action"] == "read" and d["gained"] for d in named)

    client.force_login(lead)
    page = client.get(reverse("evidence:run", args=[run.pk])).content.decode()
    assert 'id="access"' in page and "public.audit_reports" in page and "exposure" in page
    assert reads[0]["gained_examples"][0] in page


def test_own_rows_made_unreachable_fail_the_history_line(db, oncall, demo_target, target_dsn):
    run = engine.create_run(demo_target, oncall)
    take_access_before(run)
    dsn = target_dsn(demo_target)
    target_support.apply_bundle(dsn)
    # Every report moves to an organization nobody belongs to: each user loses their own history.
    execute(dsn, """
        SET session_replication_role = replica;
        INSERT INTO public.organizations (slug, name) VALUES ('accessdiff-limbo', 'Nobody''s');
        UPDATE public.audit_reports SET organization_id = (SELECT id FROM public.organizations
                                                           WHERE slug = 'accessdiff-limbo');
    """)
    collect_evidence(run, kinds=[EvidenceReport.Kind.ACCESS])
    history = next(line for line in build_scorecard(run) if line["key"] == "history")
    assert history["status"] == "not_met"
    losses = history["evidence"]["access_diff"]["losses"]
    reads = [d for d in losses if d["relation"] == "public.audit_reports" and d["action"] == "read"]
    assert reads and all(d["after"] == 0 and d["lost"] == d["before"] > 0 and d["lost_examples"] for d in reads)
