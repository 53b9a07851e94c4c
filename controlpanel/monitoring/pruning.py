"""Keeps the health history small: every check for a while, then one per day, then nothing.

Ages come from settings (environment): MONITORING_KEEP_ALL_DAYS (default 7) and MONITORING_KEEP_DAYS (90).
"""

from datetime import timedelta

from django.db.models import Max
from django.db.models.functions import TruncDate
from django.utils import timezone

from . import conf
from .models import HealthCheck


def prune_health_history(now=None, *, keep_all_days: int | None = None, keep_days: int | None = None) -> dict:
    """Delete checks older than keep_days; between keep_all_days and keep_days keep the last check per day."""
    now = now or timezone.now()
    keep_all_days = keep_all_days if keep_all_days is not None else conf.get("MONITORING_KEEP_ALL_DAYS")
    keep_days = keep_days if keep_days is not None else conf.get("MONITORING_KEEP_DAYS")
    expired, _ = HealthCheck.objects.filter(checked_at__lt=now - timedelta(days=keep_days)).delete()
    old = HealthCheck.objects.filter(checked_at__lt=now - timedelta(days=keep_all_days))
    keepers = (old.annotate(day=TruncDate("checked_at")).values("target_id", "day")
               .annotate(last=Max("checked_at")))
    keep_ids: set[int] = set()
    for group in keepers:
        keeper = (old.filter(target_id=group["target_id"], checked_at=group["last"])
                  .order_by("-id").values_list("id", flat=True).first())
        if keeper is not None:
            keep_ids.add(keeper)
    downsampled, _ = old.exclude(id__in=keep_ids).delete()
    return {"expired": expired, "downsampled": downsampled, "kept_daily": len(keep_ids)}
