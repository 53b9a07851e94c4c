"""Redis stops mid-step and while idle: the worker survives and reconnects, the panel keeps answering, the
step ends in a state a person can act on; /health/ names a queue whose worker is gone."""

import json
import signal
import subprocess
import sys

import pytest

from controlpanel.runbook.definition import RUNBOOK
from controlpanel.runs import engine
from controlpanel.runs.models import StepCommand, StepRun
from tests.helpers.waiting import wait_step, wait_until
from tests.runs.test_faults import private_redis, use_broker  # noqa: F401  (fixture)

STEP = "step3.deploy"


def requirements(key):
    for required in RUNBOOK.step(key).requires:
        yield required
        yield from requirements(required)


def restart_redis(port, tmp_path):
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
               what="redis back")
    return process


@pytest.fixture
def outage(transactional_db, private_redis, worker_factory, demo_target, oncall, tmp_path, settings):  # noqa: F811
    """A run whose deploy step (a configured command printing for ~6 s) may start; this process and a real
    worker use a private Redis that the test stops."""
    from controlpanel.celery import app

    port, process = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    original = app.conf.broker_url
    use_broker(app, url)
    settings.REDIS_URL = url  # what /health/ pings
    StepCommand.objects.create(name="workers_deploy", working_directory=str(tmp_path), timeout_seconds=120,
                               arguments=[sys.executable, "-c",
                                          "import time\nfor i in range(12):\n print('deploying', i, flush=True)\n"
                                          " time.sleep(0.5)"])
    run = engine.create_run(demo_target, oncall)
    run.steps.filter(key__in=set(requirements(STEP))).update(status=StepRun.Status.SUCCEEDED)
    worker = worker_factory(env={"REDIS_URL": url})
    state = {"port": port, "redis": process, "worker": worker, "run": run}
    yield state
    state["redis"].kill()
    use_broker(app, original)


def stop_redis(state):
    state["redis"].send_signal(signal.SIGTERM)
    state["redis"].wait(10)


def test_redis_stopping_mid_step_leaves_worker_panel_and_step_usable(outage, client, oncall, tmp_path):
    run, worker = outage["run"], outage["worker"]
    engine.start_step(run, STEP, oncall, confirm_target=run.target.name)
    wait_step(run, STEP, until=("running",))
    stop_redis(outage)
    client.force_login(oncall)
    assert client.get(f"/runs/{run.pk}/steps/{STEP}/").status_code == 200  # the panel keeps answering
    health = client.get("/health/")
    assert health.status_code == 503 and json.loads(health.content)["checks"]["redis"]["ok"] is False
    step = wait_step(run, STEP, timeout=60)
    assert step.status == "succeeded", step.attempts.get().error  # the state machine recorded the outcome
    assert worker.process.poll() is None, worker.log.read_text()[-3000:]
    assert "Unrecoverable error" not in worker.log.read_text()
    # Redis comes back: the same worker reconnects and runs the next request.
    outage["redis"] = restart_redis(outage["port"], tmp_path)
    engine.start_step(run, STEP, oncall, confirm_target=run.target.name, rerun=True)
    assert wait_step(run, STEP, timeout=90).status == "succeeded"
    assert worker.process.poll() is None


def test_redis_stopping_while_idle_leaves_the_worker_running(outage, client, oncall, tmp_path):
    run, worker = outage["run"], outage["worker"]
    stop_redis(outage)
    client.force_login(oncall)
    assert client.get(f"/runs/{run.pk}/").status_code == 200
    with pytest.raises(engine.QueueUnavailable):
        engine.start_step(run, STEP, oncall, confirm_target=run.target.name)
    assert run.steps.get(key=STEP).status == "pending"  # a person can simply try again
    outage["redis"] = restart_redis(outage["port"], tmp_path)
    wait_until(lambda: worker.process.poll() is not None or "Connected to redis" in
               worker.log.read_text().split("Connection to broker lost")[-1], timeout=60, what="reconnect")
    assert worker.process.poll() is None, worker.log.read_text()[-3000:]
    engine.start_step(run, STEP, oncall, confirm_target=run.target.name)
    assert wait_step(run, STEP, timeout=90).status == "succeeded"


def test_health_names_a_queue_whose_worker_is_gone(transactional_db, private_redis, worker_factory, client):  # noqa: F811
    from controlpanel.celery import app

    port, _ = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    original = app.conf.broker_url
    use_broker(app, url)
    try:
        worker_factory(queues="default", env={"REDIS_URL": url})  # the steps worker is missing
        body = json.loads(client.get("/health/").content)
        assert body["checks"]["celery_workers"]["ok"] is False
        assert "steps" in body["checks"]["celery_workers"]["detail"]
    finally:
        use_broker(app, original)
