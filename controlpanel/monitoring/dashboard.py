"""Charts of a target's health history, built from stored HealthCheck rows (no target access)."""

from __future__ import annotations

from . import conf
from .charts import Reference, Series, bar_chart, line_chart
from .checks import pre_migration_bytes
from .models import HealthCheck

MB = 1024 * 1024


def history(target, run=None, limit: int | None = None) -> list[HealthCheck]:
    """The most recent checks (oldest first), at most MONITORING_CHART_POINTS."""
    checks = HealthCheck.objects.filter(target=target)
    if run is not None:
        checks = checks.filter(run=run)
    limit = limit or conf.get("MONITORING_CHART_POINTS")
    return list(reversed(checks.order_by("-checked_at", "-id")[:limit]))


def _plan_ms(check: HealthCheck, who: str):
    plan = (check.figures.get("latency") or {}).get(who)
    return plan["execution_ms"] if plan else None


def organizations_chart(checks):
    migrated = [c for c in checks if c.migrated and "organizations" in c.figures]
    return line_chart(
        "organizations", "Organizations and active memberships over time",
        "Daily health check counts: organizations (circles, solid line) and active memberships (squares, "
        "dashed line).", "count",
        [Series("Organizations", [(c.checked_at, c.figures["organizations"]) for c in migrated]),
         Series("Active memberships", [(c.checked_at, c.figures.get("active_memberships")) for c in migrated])],
        empty="No organization figures yet: the target is not migrated.")


def latency_chart(checks, sla_ms: float):
    measured = [c for c in checks if c.figures.get("latency", {}).get("member")]
    return line_chart(
        "latency", "Tenant query latency against the 500 ms SLA",
        f"EXPLAIN ANALYZE execution time of SELECT * FROM audit_reports WHERE organization_id = … as an "
        f"impersonated member (circles) and as the service role (squares); dashed line: SLA {sla_ms:.0f} ms.",
        "milliseconds",
        [Series("Member (RLS)", [(c.checked_at, _plan_ms(c, "member")) for c in measured]),
         Series("Service role", [(c.checked_at, _plan_ms(c, "service_role")) for c in measured])],
        references=(Reference(sla_ms, f"SLA {sla_ms:.0f} ms"),),
        empty="No latency figures yet: the target is not migrated.")


def size_chart(checks, baseline_bytes, budget_pct: float):
    sized = [c for c in checks if c.figures.get("database_bytes")]
    references: tuple[Reference, ...] = ()
    if baseline_bytes:
        references = (Reference(baseline_bytes / MB, "pre-migration size"),
                      Reference(baseline_bytes * (1 + budget_pct / 100) / MB, f"+{budget_pct:.0f} % budget"))
    return line_chart(
        "size", "Database size against the pre-migration size and the growth budget",
        "Database size at each check (circles); dashed lines: size before the migration and the "
        f"{budget_pct:.0f} % growth budget above it.", "MB",
        [Series("Database size", [(c.checked_at, round(c.figures["database_bytes"] / MB, 2)) for c in sized])],
        references=references)


def distribution_chart(latest):
    stats = (latest.figures.get("organization_stats") or {}) if latest else {}
    top = stats.get("top") or []
    labels = [o["slug"] for o in top]
    return bar_chart(
        "top_organizations", "Reports and jobs per organization (top organizations)",
        "Latest check: reports (solid bars) and automation jobs (hatched bars) of the organizations with the "
        "most reports.", "rows", labels,
        [Series("Reports", [(o["slug"], o["reports"]) for o in top]),
         Series("Jobs", [(o["slug"], o["jobs"]) for o in top])],
        empty="No organization statistics yet.")


def histogram_chart(latest):
    stats = (latest.figures.get("organization_stats") or {}) if latest else {}
    buckets = stats.get("reports_histogram") or []
    labels = [f"{b['low']:,}–{b['high']:,}" for b in buckets]
    return bar_chart(
        "distribution", "Distribution of reports per organization",
        "Latest check: how many organizations (bars) have a number of reports in each range.", "organizations",
        labels, [Series("Organizations", [(label, b["organizations"]) for label, b in zip(labels, buckets,
                                                                                         strict=True)])],
        empty="No organization statistics yet.")


def index_chart(latest):
    indexes = (latest.figures.get("indexes") or []) if latest else []
    labels = [i["index"].removeprefix("idx_") for i in indexes]
    return bar_chart(
        "indexes", "Index scans per organization index",
        "Latest check, from pg_stat_user_indexes: number of scans (solid) of each index whose name contains "
        "'organization'. Zero means never used.", "scans", labels,
        [Series("Index scans", [(label, i["idx_scan"]) for label, i in zip(labels, indexes, strict=True)])],
        empty="No organization indexes yet.")


def target_charts(target, checks: list[HealthCheck]) -> list:
    latest = next((c for c in reversed(checks) if c.migrated), None)
    sla = conf.get("RUNBOOK_SLA_MS")
    budget = conf.get("RUNBOOK_SIZE_BUDGET_PERCENT")
    return [organizations_chart(checks), distribution_chart(latest), histogram_chart(latest),
            latency_chart(checks, sla), size_chart(checks, pre_migration_bytes(target), budget), index_chart(latest)]


def run_charts(run) -> list:
    checks = history(run.target, run=run, limit=100)
    sla = conf.get("RUNBOOK_SLA_MS")
    budget = conf.get("RUNBOOK_SIZE_BUDGET_PERCENT")
    return [latency_chart(checks, sla), size_chart(checks, pre_migration_bytes(run.target), budget)]
