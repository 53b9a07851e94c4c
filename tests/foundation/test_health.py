import json

import pytest


@pytest.mark.django_db
def test_health_reports_each_service_without_login(client, celery_worker):
    response = client.get("/health/")
    body = json.loads(response.content)
    assert response.status_code == 200, body
    assert set(body["checks"]) == {"control_db", "redis", "celery_workers"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_health_is_503_when_redis_is_unreachable(client, settings):
    from controlpanel.celery import app

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    original = app.conf.broker_url
    app.conf.broker_url = settings.REDIS_URL
    try:
        response = client.get("/health/")
    finally:
        app.conf.broker_url = original
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["control_db"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_a_task_completes_through_redis_in_a_real_worker(celery_worker, demo_target):
    """The targets page's check is a task: queued in Redis, run by the worker, stored in the control DB."""
    import time

    from controlpanel.targets.tasks import check_target_task

    check_target_task.delay(demo_target.pk)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        demo_target.refresh_from_db()
        if demo_target.last_check:
            break
        time.sleep(0.2)
    assert demo_target.last_check["supabase_shape"] is True
    assert demo_target.last_check["server_version"].startswith("15")
