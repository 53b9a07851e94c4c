"""The Migration Control Panel: a Django project that executes, watches, proves and undoes the migration runbook."""

from .celery import app as celery_app

__all__ = ["celery_app"]
