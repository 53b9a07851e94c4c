"""Health checks of targets: collect figures, compare them with thresholds, store and notify.

``check_and_store(target)`` is what the Celery task, the CLI and tests call; ``evaluate`` is a pure function
(figures in, alerts out) so that every threshold is testable without a database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from controlpanel.core.notify import notify
from controlpanel.targets.connection import TargetUnavailable, target_connection

from . import conf, queries
from .models import HealthCheck

log = logging.getLogger(__name__)

FAIL, WARN = "fail", "warn"


@dataclass(frozen=True)
class Thresholds:
    sla_ms: float = 500.0  # runbook: < 500 ms for typical operations
    growth_pct: float = 10.0  # runbook: database size increase < 10 %
    unused_index_is_alert: bool = True  # runbook: index usage is optimal for multi-tenant queries

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(sla_ms=conf.get("RUNBOOK_SLA_MS"), growth_pct=conf.get("RUNBOOK_SIZE_BUDGET_PERCENT"))


def _alert(code: str, severity: str, message: str) -> dict:
    return {"code": code, "severity": severity, "message": message}


def growth_pct(database_bytes: int | None, baseline_bytes: int | None) -> float | None:
    if not database_bytes or not baseline_bytes:
        return None
    return round((database_bytes - baseline_bytes) * 100.0 / baseline_bytes, 2)


def evaluate(figures: dict, *, baseline_bytes: int | None = None, thresholds: Thresholds | None = None) -> list[dict]:
    """Alerts raised by one check's figures (empty list: healthy)."""
    t = thresholds or Thresholds()
    alerts = []
    if figures.get("unreachable"):
        return [_alert("unreachable", FAIL, figures["unreachable"])]
    for section, error in sorted((figures.get("errors") or {}).items()):
        alerts.append(_alert(f"error:{section}", FAIL, f"The {section} check failed: {error}"))
    if not figures.get("migrated"):
        return alerts
    latency = figures.get("latency") or {}
    for who, label in (("member", "an impersonated member"), ("service_role", "the service role")):
        plan = latency.get(who)
        if plan and plan["execution_ms"] > t.sla_ms:
            alerts.append(_alert(f"sla:{who}", FAIL,
                                 f"The tenant query took {plan['execution_ms']:.1f} ms as {label} "
                                 f"(SLA {t.sla_ms:.0f} ms)."))
    growth = growth_pct(figures.get("database_bytes"), baseline_bytes)
    if growth is not None and growth > t.growth_pct:
        alerts.append(_alert("growth", FAIL, f"Database is {growth:.1f} % larger than before the migration "
                                             f"(budget {t.growth_pct:.0f} %)."))
    if t.unused_index_is_alert:
        for index in figures.get("indexes") or []:
            # Only the organization_id indexes the migration adds; keys and constraints are used by writes.
            if index.get("organization_id_index", True) and index["idx_scan"] == 0:
                alerts.append(_alert(f"index_unused:{index['index']}", WARN,
                                     f"Index {index['index']} on {index['table']} has never been used."))
    for finding in (figures.get("rls_audit") or {}).get("findings") or []:
        alerts.append(_alert(f"rls:{finding['key']}", FAIL if finding.get("blocking", True) else WARN,
                             f"RLS audit ({finding.get('severity', '?')}): {finding.get('message') or finding['key']}"))
    isolation = figures.get("isolation") or {}
    if isolation.get("available") and isolation.get("ok") is False:
        alerts.append(_alert("isolation", FAIL, f"Isolation probe failed: {isolation.get('detail', '')}"))
    return alerts


def pre_migration_bytes(target, before=None) -> int | None:
    """Database size of the latest check that found the target not yet migrated (the growth baseline)."""
    checks = HealthCheck.objects.filter(target=target, figures__migrated=False, figures__has_key="database_bytes")
    if before is not None:
        checks = checks.filter(checked_at__lte=before)
    latest = checks.order_by("-checked_at", "-id").values_list("figures__database_bytes", flat=True).first()
    return int(latest) if latest else None


def run_for(target):
    """The run a check belongs to: the one executing a step on the target now, else the open one, else the latest
    completed (a check taken during a run's Step 5 is that run's evidence, whatever was created since)."""
    from controlpanel.runs.models import Run, StepRun

    runs = target.runs.order_by("-created_at")
    return (runs.filter(steps__status__in=StepRun.ACTIVE).first()
            or runs.filter(status=Run.Status.OPEN).first()
            or runs.filter(status=Run.Status.COMPLETED).first())


def collect(target) -> dict:
    try:
        with target_connection(target, application_name="controlpanel-health") as conn:
            return queries.collect_figures(conn)
    except TargetUnavailable as exc:
        return {"unreachable": str(exc)}


def check_and_store(target, run=None, *, notify_changes: bool = True) -> HealthCheck:
    """Run one health check now, store it, and notify about alerts the previous check did not have."""
    started = time.monotonic()
    figures = collect(target)
    previous = HealthCheck.objects.filter(target=target).order_by("-checked_at", "-id").first()
    baseline = pre_migration_bytes(target)
    if figures.get("migrated"):
        figures["baseline_bytes"] = baseline
        figures["growth_pct"] = growth_pct(figures.get("database_bytes"), baseline)
    thresholds = Thresholds.from_settings()
    figures["thresholds"] = {"sla_ms": thresholds.sla_ms, "growth_pct": thresholds.growth_pct}
    alerts = evaluate(figures, baseline_bytes=baseline, thresholds=thresholds)
    check = HealthCheck.objects.create(
        target=target,
        run=run if run is not None else run_for(target),
        checked_at=timezone.now(),
        ok=not any(a["severity"] == FAIL for a in alerts),
        figures=figures,
        alerts=alerts,
        seconds=round(time.monotonic() - started, 3),
    )
    if notify_changes:
        notify_new_alerts(check, previous)
    return check


def new_alerts(check: HealthCheck, previous: HealthCheck | None) -> list[dict]:
    seen = previous.alert_codes if previous else set()
    return [a for a in check.alerts if a["code"] not in seen]


def notify_new_alerts(check: HealthCheck, previous: HealthCheck | None) -> list[str]:
    """Send one notification listing the alerts that appeared since the previous check."""
    fresh = new_alerts(check, previous)
    if not fresh:
        return []
    target = check.target
    lines = [f"- [{a['severity']}] {a['message']}" for a in fresh]
    path = reverse("monitoring:target", args=[target.name])
    body = (f"Health check of target {target.name} ({target.get_environment_display()}) at "
            f"{check.checked_at:%Y-%m-%d %H:%M:%S %Z} raised {len(fresh)} new alert(s):\n"
            + "\n".join(lines) + f"\n\nHistory and charts: {path}\n")
    subject = f"[controlpanel] {target.name}: {len(fresh)} new health alert(s)"
    delivered = notify(subject, body, target=target.name, check=check.pk,
                       alerts=[a["code"] for a in fresh])
    check.notified = delivered
    check.save(update_fields=["notified"])
    return delivered
