"""Each threshold crossing is marked on the check (and the page) and sends one notification."""

import pytest
from django.core import mail

from controlpanel.monitoring import checks
from controlpanel.monitoring.checks import FAIL, WARN, Thresholds, check_and_store, evaluate
from controlpanel.monitoring.models import HealthCheck

HEALTHY = {
    "migrated": True, "database_bytes": 105, "organizations": 3, "active_memberships": 10,
    "latency": {"member": {"execution_ms": 3.0}, "service_role": {"execution_ms": 2.0}},
    "indexes": [{"index": "idx_audit_reports_organization_id_created_at", "table": "audit_reports", "idx_scan": 7,
                 "organization_id_index": True}],
    "rls_audit": {"available": True, "findings": []},
    "isolation": {"available": True, "ok": True},
}


def crossing(**changes):
    figures = {**HEALTHY, **changes}
    return figures


CASES = {
    "sla:member": crossing(latency={"member": {"execution_ms": 612.5}, "service_role": {"execution_ms": 2.0}}),
    "sla:service_role": crossing(latency={"member": {"execution_ms": 2.0}, "service_role": {"execution_ms": 501}}),
    "growth": crossing(database_bytes=111),
    "index_unused:idx_audit_reports_organization_id_created_at": crossing(indexes=[
        {"index": "idx_audit_reports_organization_id_created_at", "table": "audit_reports", "idx_scan": 0,
         "organization_id_index": True}]),
    "rls:table_without_rls:public.waitlist": crossing(rls_audit={"available": True, "findings": [
        {"code": "table_without_rls", "object": "public.waitlist", "severity": "critical", "blocking": True,
         "key": "table_without_rls:public.waitlist", "message": "waitlist readable without RLS"}]}),
    "isolation": crossing(isolation={"available": True, "ok": False, "detail": "audit_reports select: leak"}),
    "error:latency": crossing(errors={"latency": "QueryCanceled: canceling statement"}),
}


def test_healthy_figures_raise_nothing():
    assert evaluate(HEALTHY, baseline_bytes=100) == []


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_threshold_crossing_raises_its_alert(code):
    alerts = evaluate(CASES[code], baseline_bytes=100)
    assert [a["code"] for a in alerts] == [code]
    expected = WARN if code.startswith("index_unused") else FAIL
    assert alerts[0]["severity"] == expected


def test_thresholds_are_inclusive_limits():
    at_limit = crossing(latency={"member": {"execution_ms": 500.0}, "service_role": {"execution_ms": 1}},
                        database_bytes=110)
    assert evaluate(at_limit, baseline_bytes=100) == []
    assert evaluate(at_limit, baseline_bytes=100, thresholds=Thresholds(sla_ms=499, growth_pct=9.9))


def test_constraint_indexes_are_not_reported_as_unused():
    figures = crossing(indexes=[{"index": "organizations_pkey", "table": "organizations", "idx_scan": 0,
                                 "organization_id_index": False}])
    assert evaluate(figures) == []


def test_not_migrated_figures_raise_nothing():
    assert evaluate({"migrated": False, "database_bytes": 10}, baseline_bytes=1) == []


@pytest.fixture
def notify_by_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NOTIFY_EMAILS = ["oncall@example.com"]
    settings.NOTIFY_WEBHOOK_URL = ""


@pytest.mark.parametrize("code", sorted(CASES))
def test_a_crossing_is_stored_marked_on_the_page_and_notified_once(code, target_factory, notify_by_email,
                                                                  monkeypatch, client, oncall):
    target = target_factory()
    HealthCheck.objects.create(target=target, figures={"migrated": False, "database_bytes": 100})  # baseline
    monkeypatch.setattr(checks, "collect", lambda t: dict(CASES[code]))

    check = check_and_store(target)
    assert code in check.alert_codes
    assert check.ok is (code.startswith("index_unused"))
    assert len(mail.outbox) == 1 and check.notified == ["email"]
    assert target.name in mail.outbox[0].subject and mail.outbox[0].to == ["oncall@example.com"]
    message = next(a["message"] for a in check.alerts if a["code"] == code)
    assert message in mail.outbox[0].body

    again = check_and_store(target)  # the same alert persists: marked again, not notified again
    assert code in again.alert_codes and len(mail.outbox) == 1 and again.notified == []

    client.force_login(oncall)
    page = client.get(f"/monitoring/targets/{target.name}/").content.decode()
    assert page.count(f'data-alert="{code}"') >= 3  # latest check + both history rows


def test_a_real_slow_query_crosses_the_sla(migrated_target, notify_by_email, settings):
    settings.RUNBOOK_SLA_MS = 0.0001  # every real execution is slower than this
    check = check_and_store(migrated_target)
    assert {"sla:member", "sla:service_role"} <= check.alert_codes and not check.ok
    assert len(mail.outbox) == 1 and "SLA" in mail.outbox[0].body


def test_real_growth_against_the_pre_migration_check(migrated_target, notify_by_email):
    HealthCheck.objects.create(target=migrated_target, figures={"migrated": False, "database_bytes": 1_000_000})
    check = check_and_store(migrated_target)
    assert check.figures["baseline_bytes"] == 1_000_000 and check.figures["growth_pct"] > 10
    assert "growth" in check.alert_codes and len(mail.outbox) == 1
