"""Periodic tasks registered in django-celery-beat (editable in the admin afterwards)."""

from django_celery_beat.models import IntervalSchedule, PeriodicTask

# name -> (task, seconds between runs)
SCHEDULES = {
    "Mark steps with a stale heartbeat as interrupted": ("controlpanel.runs.tasks.reap_stale_steps", 5),
}


def ensure_schedules() -> None:
    for name, (task, seconds) in SCHEDULES.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval})
