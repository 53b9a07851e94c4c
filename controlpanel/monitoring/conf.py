"""Monitoring settings: Django settings first, then the environment, then a local default.

The shared settings module may define these; until it does, the environment variables of the same name work.
"""

import os

from django.conf import settings

DEFAULTS = {
    "MONITORING_SLA_MS": 500.0,  # runbook: typical operations under 500 ms
    "MONITORING_GROWTH_BUDGET_PCT": 10.0,  # runbook: database size increase under 10 %
    "MONITORING_CHECK_MINUTES": 15,  # how often beat enqueues a health check per target
    "MONITORING_KEEP_ALL_DAYS": 7,  # keep every check this long ...
    "MONITORING_KEEP_DAYS": 90,  # ... then one per day, deleted after this many days
    "MONITORING_CHART_POINTS": 500,  # at most this many checks drawn on a target's charts
}


def get(name: str):
    default = DEFAULTS[name]
    if hasattr(settings, name):
        return type(default)(getattr(settings, name))
    return type(default)(os.environ.get(name, default))
