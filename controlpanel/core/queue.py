"""Sending work to the Celery queue from a request, saying so when the broker is down."""

import logging

from controlpanel.celery import app

log = logging.getLogger(__name__)

UNAVAILABLE = "The task queue (Redis) is unavailable: nothing was queued. Try again when it is back."


def enqueue(task, *args, **kwargs):
    """Send the task now; returns the AsyncResult, or None when the broker cannot be reached."""
    try:
        return task.apply_async(args=args, kwargs=kwargs, retry=False)
    except Exception as exc:  # kombu's OperationalError and friends: the message was not queued
        log.warning("could not queue %s: %s", task.name, type(exc).__name__)
        return None


def enqueue_by_name(task_name: str, *args, **kwargs):
    """Send a task known only by its name (its queue from CELERY_TASK_ROUTES), so that the sender need not import
    the tasks module (which imports the sender); returns the AsyncResult, or None when the broker cannot be reached."""
    try:
        return app.send_task(task_name, args=args, kwargs=kwargs, retry=False)
    except Exception as exc:  # kombu's OperationalError and friends: the message was not queued
        log.warning("could not queue %s: %s", task_name, type(exc).__name__)
        return None
