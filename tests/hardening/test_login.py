"""Logins are throttled and audited; deployment settings are safe; sessions end when idle."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from controlpanel.core.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]


def login(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(db, client, settings, lead):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "lena", "wrong-guess").status_code == 200
    assert login(client, "lena", "wrong-guess").status_code == 429  # the limit-th failure locks
    refused = login(client, "lena", "lena-pass-123")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    failures = AuditEvent.objects.filter(action="login.failed")
    assert failures.count() >= settings.AXES_FAILURE_LIMIT
    assert failures.first().detail["attempted"] == "lena" and failures.first().ip == "127.0.0.1"
    assert AuditEvent.objects.filter(action="login.locked_out", detail__attempted="lena").exists()


def test_a_successful_login_is_audited(db, client, lead):
    assert login(client, "lena", "lena-pass-123").status_code == 302
    event = AuditEvent.objects.get(action="login.success")
    assert event.user == lead and event.ip == "127.0.0.1"


def test_a_session_ends_after_the_idle_timeout_and_slides_with_activity(db, client, settings, lead):
    login(client, "lena", "lena-pass-123")
    session = Session.objects.get(session_key=client.session.session_key)
    assert session.expire_date <= timezone.now() + timedelta(minutes=settings.SESSION_IDLE_MINUTES, seconds=5)
    # Idle for longer than the timeout: the session is gone, the next page asks for a login.
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get("/runs/").status_code == 302
    # Active: a request after a minute pushes the expiry forward again.
    login(client, "lena", "lena-pass-123")
    store = client.session
    store["_seen"] = 0
    store.save()
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get("/runs/").status_code == 200
    slid_to = Session.objects.get(session_key=key).expire_date
    assert slid_to > timezone.now() + timedelta(minutes=settings.SESSION_IDLE_MINUTES - 1)


def _manage(*args, **env):
    # The browser fixture sets DJANGO_ALLOW_ASYNC_UNSAFE for this test process: not part of a deployment.
    clean = {k: v for k, v in os.environ.items()
             if k not in ("SECRET_KEY", "HTTPS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    clean.update(DJANGO_SETTINGS_MODULE="controlpanel.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_without_debug_the_panel_refuses_a_missing_or_placeholder_secret_key():
    for key in (None, "insecure-local-only-key-change-me-in-production-0123456789", "short"):
        done = _manage("check", **({"SECRET_KEY": key} if key else {}))
        assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr, key


def test_the_deployment_check_is_clean_with_a_real_key():
    import secrets

    done = _manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(50))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("debug,secure", [("0", True), ("1", False)])
def test_https_settings_follow_debug(debug, secure):
    code = ("from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0)")
    clean = {k: v for k, v in os.environ.items() if k not in ("HTTPS",)}
    clean.update(DJANGO_SETTINGS_MODULE="controlpanel.settings", DEBUG=debug, SECRET_KEY="k" * 10 + "abcdefghij" * 5)
    done = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == [str(secure)] * 4, done.stderr
