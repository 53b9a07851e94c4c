"""Secrets never reach a page, a log, a notification or an export: malformed DSNs, encodings, free text."""

import base64
import sys
from urllib.parse import quote

import pytest

from controlpanel.targets import checks, secrets
from controlpanel.targets.connection import TargetUnavailable, connect
from controlpanel.targets.models import Target

PASSWORD = "S3cr3t-Pa55word!"
DSN = f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:5432/nowhere"


@pytest.fixture
def secret_target(db, monkeypatch):
    monkeypatch.setenv("HARDENING_SECRET_DSN", DSN)
    return Target.objects.create(name="secret", environment="staging", dsn_env_var="HARDENING_SECRET_DSN")


def test_a_malformed_dsn_is_named_and_not_shown(db, monkeypatch):
    monkeypatch.setenv("HARDENING_WEIRD_DSN", "postgresql://postgres:Pw%zzLEAKME1@127.0.0.1:5432/x")
    target = Target.objects.create(name="weird", environment="staging", dsn_env_var="HARDENING_WEIRD_DSN")
    with pytest.raises(TargetUnavailable) as raised:
        connect(target)
    assert str(raised.value) == "Target weird: the DSN in HARDENING_WEIRD_DSN is malformed."
    result = checks.check_and_store(target)
    target.refresh_from_db()
    assert "LEAKME" not in result.error and "LEAKME" not in str(target.last_check)
    assert "malformed" in result.error


@pytest.mark.parametrize("form", [
    PASSWORD,
    DSN,
    quote(PASSWORD, safe=""),
    PASSWORD[::-1],
    base64.b64encode(PASSWORD.encode()).decode(),
    base64.b64encode(f"user=postgres password={PASSWORD} host=db".encode()).decode(),
    base64.b64encode(f"xx{DSN}".encode()).decode(),
    PASSWORD.encode().hex(),
    f"{PASSWORD[:7]}\n{PASSWORD[7:12]}\n{PASSWORD[12:]}",
], ids=["plain", "dsn", "urlencoded", "reversed", "base64", "base64-inside", "base64-shifted", "hex", "split"])
def test_every_common_form_of_a_secret_is_redacted(secret_target, form):
    text = f"before {form} after"
    redacted = secrets.redact(text)
    assert "[redacted]" in redacted and redacted.startswith("before ") and redacted.endswith(" after")
    for leftover in (PASSWORD, PASSWORD[::-1], "Pa55word", "cjNjcjN0"):
        assert leftover not in redacted.replace("\n", "")


def test_ordinary_text_is_left_alone(secret_target):
    text = "ALTER TABLE audit_reports ADD COLUMN organization_id uuid; -- 1,000,000 rows in 12.5 s"
    assert secrets.redact(text) == text


def test_free_text_is_redacted_before_it_is_stored(secret_target, cast):
    from controlpanel.core import audit
    from controlpanel.core.models import AuditEvent
    from controlpanel.runs import engine

    run = engine.create_run(secret_target, cast["alice"])
    engine.record_override(run, "staging", cast["lena"], reason=f"pasted by mistake: {DSN}")
    override = run.overrides.get()
    assert PASSWORD not in override.reason and "[redacted]" in override.reason
    audit.record("test.note", user=cast["alice"], note=base64.b64encode(PASSWORD.encode()).decode())
    stored = " ".join(str(e.detail) for e in AuditEvent.objects.all())
    assert PASSWORD not in stored and "[redacted]" in stored
    assert base64.b64encode(PASSWORD.encode()).decode()[:12] not in stored


def test_notifications_and_csv_exports_are_redacted(secret_target, settings, mailoutbox):
    import io

    from controlpanel.core import csvsafe, notify

    settings.NOTIFY_EMAILS = ["lead@example.com"]
    notify.notify("escalation", f"reason: {DSN[::-1]}", reason=PASSWORD)
    assert PASSWORD not in mailoutbox[0].body and PASSWORD[::-1] not in mailoutbox[0].body
    buffer = io.StringIO()
    csvsafe.writer(buffer).writerow(["note", f"see {PASSWORD}"])
    assert PASSWORD not in buffer.getvalue()


def test_command_output_is_redacted_even_split_across_lines(secret_target):
    """The live log of a command never shows a passed variable, whichever way the program prints it."""
    import subprocess

    from controlpanel.runs.executors.commands import _stream

    class Sink:
        lines = []

        def emit(self, kind, message, **data):
            self.lines.append(message)

    class Ctx:
        sink = Sink()

        def is_cancelled(self):
            return False

    program = ("import base64, sys, time\n"
               f"s = {PASSWORD!r}\n"
               "print('start'); print(s[:6]); print(s[6:]); print(s[::-1])\n"
               "print(base64.b64encode(s.encode()).decode())\n"
               "sys.stdout.flush(); time.sleep(1.5); print('end')\n")
    process = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    ctx = Ctx()
    assert _stream(process, ctx, timeout=30, secrets=secrets.secret_values(secret_target)) == 0
    log = "\n".join(ctx.sink.lines)
    assert ctx.sink.lines[0] == "start" and ctx.sink.lines[-1] == "end"
    assert PASSWORD[:6] not in log and PASSWORD[6:] not in log and PASSWORD[::-1] not in log
    assert base64.b64encode(PASSWORD.encode()).decode()[:12] not in log


def test_task_results_are_not_logged_by_the_worker(transactional_db, celery_worker, demo_target):
    from controlpanel.targets.tasks import check_target_task
    from tests.helpers.waiting import wait_until

    check_target_task.delay(demo_target.pk)
    wait_until(lambda: demo_target.refresh_from_db() or demo_target.last_check, timeout=60, what="the check")
    wait_until(lambda: "check_target_task" in celery_worker.log.read_text(), timeout=10, what="the task's log line")
    log = celery_worker.log.read_text()
    assert "succeeded in" not in log, [line for line in log.splitlines() if "succeeded in" in line][:3]
