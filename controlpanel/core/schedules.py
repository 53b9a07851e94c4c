"""The panel's own periodic tasks: settings.CELERY_BEAT_SCHEDULE is the one list.

django-celery-beat's DatabaseScheduler writes that list into its tables every time beat starts, so a
deleted or disabled safety schedule (the reaper) comes back with the next start; bootstrap writes it too.
"""

from django.conf import settings
from django_celery_beat.schedulers import ModelEntry


def ensure_schedules() -> None:
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        ModelEntry.from_entry(name, **entry)
