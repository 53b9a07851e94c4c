"""The monitoring area's periodic tasks in django-celery-beat (editable in the admin afterwards)."""

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from . import conf

HEALTH_CHECKS = "Health check every target"
PRUNE_HISTORY = "Prune and downsample the health history"


def ensure_monitoring_schedules() -> list[PeriodicTask]:
    """Create the periodic tasks if missing; an edited schedule (admin) is left as it is."""
    every = IntervalSchedule.objects.get_or_create(every=conf.get("MONITORING_CHECK_MINUTES"),
                                                   period=IntervalSchedule.MINUTES)[0]
    nightly = CrontabSchedule.objects.get_or_create(minute="17", hour="3", day_of_week="*", day_of_month="*",
                                                    month_of_year="*", timezone="UTC")[0]
    checks, _ = PeriodicTask.objects.get_or_create(
        name=HEALTH_CHECKS,
        defaults={"task": "controlpanel.monitoring.tasks.schedule_health_checks", "interval": every,
                  "description": "Enqueues one health check per target on the default queue."})
    prune, _ = PeriodicTask.objects.get_or_create(
        name=PRUNE_HISTORY,
        defaults={"task": "controlpanel.monitoring.tasks.prune_health_history_task", "crontab": nightly,
                  "description": "Keeps every check for MONITORING_KEEP_ALL_DAYS, then one per day, "
                                 "deletes after MONITORING_KEEP_DAYS."})
    return [checks, prune]
