import logging
import os

from celery import Celery, signals

from controlpanel.broker import patch_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
patch_redis_transport()

app = Celery("controlpanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.after_setup_logger.connect
def _do_not_log_task_results(**kwargs):
    # Celery logs every task's return value at INFO ("Task … succeeded in 0.1s: <value>"); values may quote
    # targets' data or errors, so the tracer's logger keeps only warnings and failures.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
