"""Monitoring settings, typed; defined (with their environment variables) in controlpanel/settings.py."""

from django.conf import settings

TYPES = {
    "RUNBOOK_SLA_MS": float,  # runbook: typical operations under 500 ms
    "RUNBOOK_SIZE_BUDGET_PERCENT": float,  # runbook: database size increase under 10 %
    "MONITORING_CHECK_MINUTES": int,  # how often beat enqueues a health check per target
    "MONITORING_KEEP_ALL_DAYS": int,  # keep every check this long ...
    "MONITORING_KEEP_DAYS": int,  # ... then one per day, deleted after this many days
    "MONITORING_CHART_POINTS": int,  # at most this many checks drawn on a target's charts
}


def get(name: str):
    return TYPES[name](getattr(settings, name))
