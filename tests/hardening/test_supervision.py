"""`make up`'s processes run under supervisord: one that dies is restarted on its own, the others keep going."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from controlpanel.core.dbroles import app_role
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@pytest.fixture
def supervised(transactional_db, tmp_path):
    """The repository's supervisord.conf, its runtime files moved to tmp, on the test database."""
    from django.db import connection

    conf = (ROOT / "supervisord.conf").read_text()
    conf = conf.replace("%(here)s/var", str(tmp_path)).replace("directory=%(here)s", f"directory={ROOT}")
    path = tmp_path / "supervisord.conf"
    path.write_text(conf)
    port = free_port()
    db_name = connection.settings_dict["NAME"]
    env = dict(os.environ, WEB_PORT=str(port), CONTROL_DB_NAME=db_name, CONTROL_DB_USER=app_role(db_name),
               REDIS_URL=django_settings.REDIS_URL, PATH=f"{BIN}:{os.environ['PATH']}", PYTHONUNBUFFERED="1")
    log = (tmp_path / "supervisord.log").open("w")
    process = subprocess.Popen([str(BIN / "supervisord"), "-c", str(path)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)

    def ctl(*args) -> str:
        return subprocess.run([str(BIN / "supervisorctl"), "-c", str(path), *args], env=env, capture_output=True,
                              text=True, timeout=30).stdout.strip()

    try:
        wait_until(lambda: ctl("status").count("RUNNING") == 4, timeout=90, what="four programs running",
                   every=0.5)
        yield {"ctl": ctl, "url": f"http://127.0.0.1:{port}", "log": tmp_path / "supervisord.log"}
    finally:
        ctl("shutdown")
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_dead_worker_is_restarted_and_web_keeps_answering(supervised):
    ctl = supervised["ctl"]
    wait_until(lambda: http_status(f"{supervised['url']}/login/") == 200, timeout=60, what="web up")
    old = int(ctl("pid", "steps"))
    os.kill(old, signal.SIGKILL)
    answered = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answered.append(http_status(f"{supervised['url']}/login/"))
        new = ctl("pid", "steps")
        if new.isdigit() and int(new) not in (0, old) and "RUNNING" in ctl("status", "steps"):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"steps was not restarted: {ctl('status')}\n{supervised['log'].read_text()[-2000:]}")
    assert set(answered) == {200}, answered  # web never went down with the worker
    assert "RUNNING" in ctl("status", "web") and "RUNNING" in ctl("status", "worker")
