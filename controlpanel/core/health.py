"""Reachability of the panel's own services, for /health/ and for `make up`."""

from django.conf import settings
from django.db import connection


def control_db_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any failure means "down"; the class name is enough detail
        return False, type(exc).__name__


def redis_ok() -> tuple[bool, str]:
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return True, "ok"
    except Exception as exc:
        return False, type(exc).__name__


def workers_ok(timeout: float = 1.0) -> tuple[bool, str]:
    """Every queue the panel uses has a worker consuming it: a steps worker that died shows here even while
    the default worker still answers."""
    from controlpanel.celery import app

    try:
        replies = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        return False, type(exc).__name__
    if not replies:
        return False, "no worker answered"
    served = {queue["name"] for queues in replies.values() for queue in queues or ()}
    missing = [q for q in (settings.STEP_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE) if q not in served]
    if missing:
        return False, f"no worker serves the {' and '.join(missing)} queue ({len(replies)} worker(s) answered)"
    return True, f"{len(replies)} worker(s)"


def service_status() -> dict:
    checks = {"control_db": control_db_ok(), "redis": redis_ok()}
    checks["celery_workers"] = workers_ok() if checks["redis"][0] else (False, "redis down")
    return {
        "ok": all(ok for ok, _ in checks.values()),
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }
