"""The access diff as run evidence: the 'before' map with the data assessment, the diff after Step 5, the page."""

import pytest
from django.urls import reverse

from controlpanel.evidence.collect import collect_evidence, take_access_before
from controlpanel.evidence.models import EvidenceReport
from controlpanel.runs import engine
from tests.support import targets as target_support

from .conftest import execute


@pytest.fixture(autouse=True)
def _sample(settings):
    settings.ACCESS_ALL_USERS_UP_TO = 10
    settings.ACCESS_SAMPLE_USERS = 12


def test_without_a_before_map_the_access_diff_is_not_met_with_its_reason(db, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    (report,) = collect_evidence(run, kinds=[EvidenceReport.Kind.ACCESS])
    assert report.passed is False and report.error.startswith("cannot measure: no 'before' access map")


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

    client.force_login(lead)
    page = client.get(reverse("evidence:run", args=[run.pk])).content.decode()
    assert 'id="access"' in page and "public.audit_reports" in page and "exposure" in page
    assert reads[0]["gained_examples"][0] in page
