"""Shared fixtures: a cast of users per role, real target databases, a real Celery worker.

Everything here talks to the real PostgreSQL and Redis on 127.0.0.1 (see `make test`).
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from controlpanel.targets import zoo
from tests.helpers import targets as target_support

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SUPABASE_SERVICE_KEY", "test-service-key-not-secret")

# Target DSNs live in environment variables, and a worker process only sees the variables it started
# with: so every test session pre-declares a pool of slots (one database name each) before any worker.
SESSION = uuid.uuid4().hex[:6]
SLOTS = 40
# Rehearsal copies of this session carry its token (workers inherit it), so tests see only their own copies.
os.environ["REHEARSAL_COPY_TAG"] = f"t{SESSION}"
# A platform target is reached as the zoo templates' migration role (shared by every template, so its
# name is known now): each slot has a twin variable for it.
PLATFORM_ROLE = zoo.PlatformRoles.for_prefix(zoo.TEMPLATE_PREFIX).migration
for _slot in range(1, SLOTS + 1):
    os.environ[f"CP_TEST_TARGET_{_slot}"] = target_support.dsn(f"cp_t_{SESSION}_{_slot}")
    os.environ[f"CP_TEST_PLATFORM_TARGET_{_slot}"] = zoo.database_dsn(target_support.dsn("postgres"),
                                                                      f"cp_t_{SESSION}_{_slot}", PLATFORM_ROLE)
_free_slots = list(range(1, SLOTS + 1))
os.environ["CP_TEST_UNREACHABLE_DSN"] = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2"


# --- people -----------------------------------------------------------------------------------------

@pytest.fixture
def cast(db):
    """alice is on call, lena is a lead, sam is support, nora has no role."""
    from django.contrib.auth.models import User

    from controlpanel.core import roles

    groups = roles.ensure_roles()
    people = {}
    for username, role in (("alice", roles.ONCALL), ("lena", roles.LEAD), ("sam", roles.SUPPORT), ("nora", None)):
        user = User.objects.create_user(username, password=f"{username}-pass-123", email=f"{username}@example.com")
        if role:
            user.groups.add(groups[role])
        people[username] = User.objects.get(pk=user.pk)  # fresh permission cache
    return people


@pytest.fixture
def oncall(cast):
    return cast["alice"]


@pytest.fixture
def lead(cast):
    return cast["lena"]


@pytest.fixture
def support(cast):
    return cast["sam"]


# --- targets ----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def target_template():
    """A seeded baseline database used as a template: each test target is a fast copy of it."""
    return target_support.ensure_template(users=200, reports=2000)


@pytest.fixture(scope="session")
def big_template():
    """A template large enough for a backfill that takes several seconds with small batches."""
    return target_support.ensure_template(users=2000, reports=60000)


@pytest.fixture
def target_factory(db, target_template):
    """make(name=None, environment="demo", template=None, shapes=None, uid_variant=None, users=200, reports=2000)
    -> Target with its own fresh database, a copy of ``template`` or of the zoo template of ``shapes``/variant.

    The Target's DSN variable connects as the panel must (a platform target: its non-superuser migration
    role); ``target.built`` is the BuiltTarget (``admin_dsn`` for superuser set-up and inspection).
    """
    from controlpanel.targets.models import Target

    made = []

    def make(name=None, environment="demo", template=None, shapes=None, uid_variant=None, users=200, reports=2000):
        if template is None:
            template = (target_support.ensure_template(users, reports, shapes or ("baseline",), uid_variant)
                        if shapes or uid_variant else target_template)
        slot = _free_slots.pop(0)
        var = f"CP_TEST_TARGET_{slot}"
        built = zoo.clone_target(target_support.dsn(template), os.environ[var].rsplit("/", 1)[1])
        made.append((slot, os.environ[var]))
        if built.platform:
            if built.roles.migration != PLATFORM_ROLE:
                raise AssertionError(f"template {template} uses role {built.roles.migration}, not {PLATFORM_ROLE}")
            var = f"CP_TEST_PLATFORM_TARGET_{slot}"
        target = Target.objects.create(name=name or f"t{slot}", environment=environment, dsn_env_var=var)
        target.built = built
        return target

    yield make
    for slot, dsn in made:
        target_support.drop(dsn)
        _free_slots.append(slot)


@pytest.fixture
def platform_target(target_factory):
    """A baseline target with Supabase's privileges (the zoo's platform shape), reached as its non-superuser
    migration role; ``target.built.admin_dsn`` for superuser set-up."""
    return target_factory(environment="staging", shapes=("platform",))


@pytest.fixture(scope="session")
def pg17_server() -> str:
    """A PostgreSQL 17 server (`make pg17`: installed from npm and started on first use); its DSN."""
    done = subprocess.run(["make", "-s", "pg17"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"make pg17 failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def demo_target(target_factory):
    return target_factory(name="demo")


# --- the queue ----------------------------------------------------------------------------------------

def _worker_env(db_name: str) -> dict:
    from controlpanel.core.dbroles import app_role

    env = dict(os.environ)
    # Workers run as the least-privileged app role (created and granted when the test database is migrated).
    env.update(CONTROL_DB_NAME=db_name, CONTROL_DB_USER=app_role(db_name), REDIS_URL=settings.REDIS_URL,
               PYTHONUNBUFFERED="1", STEP_STALE_AFTER_SECONDS=str(settings.STEP_STALE_AFTER_SECONDS))
    return env


class WorkerProcess:
    """A real `celery worker` subprocess on the test control database and Redis."""

    def __init__(self, db_name: str, name: str | None = None, queues: str = "steps,default", concurrency: int = 2,
                 env: dict | None = None):
        self.db_name, self.queues, self.concurrency, self.env = db_name, queues, concurrency, env or {}
        self.name = name or f"test-{uuid.uuid4().hex[:6]}"
        self.process = None
        self.log = ROOT / "artifacts" / f"worker-{self.name}.log"

    def start(self):
        self.log.parent.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "controlpanel", "worker", "-Q", self.queues,
             "-c", str(self.concurrency), "-n", f"{self.name}@%h", "--loglevel", "INFO", "--without-mingle",
             "--without-gossip"],
            cwd=ROOT, env=_worker_env(self.db_name) | self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        from controlpanel.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            replies = app.control.ping(destination=[f"{self.name}@{os.uname().nodename}"], timeout=0.5) or []
            if replies:
                return
        raise RuntimeError(f"worker did not answer: {self.log.read_text()[-2000:]}")

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A session-wide worker; tests that use it need `transactional_db` so it sees their rows."""
    from controlpanel.celery import app

    with django_db_blocker.unblock():
        from django.db import connection

        db_name = connection.settings_dict["NAME"]
    app.control.purge()
    worker = WorkerProcess(db_name).start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(django_db_setup, django_db_blocker):
    """Start extra workers (e.g. to kill one); stopped at the end of the test."""
    from django.db import connection

    started = []

    def make(**kwargs):
        with django_db_blocker.unblock():
            name = connection.settings_dict["NAME"]
        worker = WorkerProcess(name, **kwargs).start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """A private copy of the SQL bundle that a test may edit (one change each)."""
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(settings.MIGRATION_BUNDLE_DIR, copy, ignore=shutil.ignore_patterns("baseline"))
    return copy


@pytest.fixture
def artifacts_dir():
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path


def target_psql(dsn: str, sql: str):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


# --- the browser ------------------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no browser download; the machine has no internet)."""
    import shutil

    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls tests make meanwhile are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30000)
    yield tab
    context.close()


def login(page, live_server, username, password=None):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or f"{username}-pass-123")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-role], h1")
