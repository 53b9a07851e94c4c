"""The RLS audit evidence says which findings the migration introduced (keys new since the before snapshot)."""

from controlpanel.evidence.collect import collect_evidence, take_snapshot
from controlpanel.evidence.models import EvidenceReport, Snapshot
from controlpanel.runs import engine
from controlpanel.targets.connection import dsn_for
from tests.helpers.targets import psql_file
from tests.safety.broken_bundles import POLICIES, SCHEMA, STATIC, apply


def test_only_findings_new_since_before_are_attributed_to_the_migration(target_factory, oncall, bundle_copy):
    target = target_factory()
    run = engine.create_run(target, oncall)
    before = take_snapshot(run, Snapshot.Label.BEFORE)
    assert before.data["rls_finding_keys"], "the single-tenant baseline has findings of its own"
    apply(bundle_copy, STATIC[1])  # organization_id IS NULL OR … on automation_jobs
    for name in (SCHEMA, POLICIES):
        psql_file(dsn_for(target), name, bundle_copy)
    (report,) = collect_evidence(run, kinds=[EvidenceReport.Kind.RLS_AUDIT])
    attribution = report.data["attribution"]
    assert attribution["measured"] is True
    assert attribution["new_blocking"] == [
        "null_disjunct|policy mt_broken_null on public.automation_jobs"]
    assert not set(attribution["new"]) & set(before.data["rls_finding_keys"])
    assert attribution["preexisting"] > 0
