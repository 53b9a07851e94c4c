"""Command steps and pausing the backfill, with the real worker."""

import sys
import time

import psycopg
import pytest

from controlpanel.runs import engine
from controlpanel.runs.models import Attempt, StepCommand, StepEvent
from controlpanel.targets.connection import dsn_for
from tests.helpers.waiting import wait_step

from .conftest import complete_prerequisites, run_step

pytestmark = pytest.mark.usefixtures("celery_worker")


def through_validation(run, user):
    complete_prerequisites(run, user)
    for key in ("step1.schema", "step1.rls", "step1.data", "step2.validate"):
        assert run_step(run, key, user).status == "succeeded", key


def test_a_configured_command_runs_with_live_output(transactional_db, oncall, demo_target, tmp_path):
    StepCommand.objects.create(name="workers_deploy", working_directory=str(tmp_path), timeout_seconds=60,
                               arguments=[sys.executable, "-c", "print('deploying workers'); print('done')"])
    run = engine.create_run(demo_target, oncall)
    through_validation(run, oncall)
    step = run_step(run, "step3.deploy", oncall)
    assert step.status == "succeeded"
    output = list(StepEvent.objects.filter(attempt__step=step, kind="output").values_list("message", flat=True))
    assert output == ["deploying workers", "done"]


def test_a_failing_command_fails_the_step(transactional_db, oncall, demo_target, tmp_path):
    StepCommand.objects.create(name="workers_deploy", working_directory=str(tmp_path), timeout_seconds=60,
                               arguments=[sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    run = engine.create_run(demo_target, oncall)
    through_validation(run, oncall)
    step = run_step(run, "step3.deploy", oncall)
    assert step.status == "failed"
    assert step.attempts.get().error["exit_code"] == 3


def test_without_a_command_the_step_is_a_manual_sign_off(transactional_db, oncall, demo_target):
    run = engine.create_run(demo_target, oncall)
    through_validation(run, oncall)
    with pytest.raises(engine.StepRefused, match="sign it off"):
        engine.start_step(run, "step3.deploy", oncall, confirm_target=demo_target.name)
    engine.sign_off(run, "step3.deploy", oncall, note="npm run deploy by hand")
    step = run.steps.get(key="step3.deploy")
    assert step.status == "succeeded" and step.signed_off_by == oncall


def test_the_backfill_pauses_and_resumes_without_losing_rows(transactional_db, oncall, target_factory,
                                                               big_template):
    target = target_factory(template=big_template)
    with psycopg.connect(dsn_for(target), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {dsn_for(target).rsplit('/', 1)[1]} SET migration.batch_size = 300")
        reports = conn.execute("SELECT count(*) FROM public.audit_reports").fetchone()[0]
    run = engine.create_run(target, oncall)
    complete_prerequisites(run, oncall)
    run_step(run, "step1.schema", oncall)
    run_step(run, "step1.rls", oncall)
    engine.start_step(run, "step1.data", oncall, confirm_target=target.name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        attempt = Attempt.objects.filter(step__run=run, step__key="step1.data").first()
        if attempt and (attempt.progress.get("backfill") or {}).get("rows_done", 0) > 0:
            break
        time.sleep(0.1)
    engine.pause_step(run, "step1.data", oncall)
    step = wait_step(run, "step1.data")
    assert step.status == "paused"
    attempt = step.attempts.get()
    assert attempt.error is None and "Resume continues" in attempt.result["paused"]
    with psycopg.connect(dsn_for(target)) as conn:
        done = conn.execute("SELECT sum(rows_done) FROM public.migration_progress "
                            "WHERE table_name = 'audit_reports'").fetchone()[0]
    assert 0 < done < reports  # committed batches are kept, the rest waits

    assert run_step(run, "step1.data", oncall).status == "succeeded"
    with psycopg.connect(dsn_for(target)) as conn:
        counts = conn.execute("SELECT count(*), count(organization_id) FROM public.audit_reports").fetchone()
    assert counts == (reports, reports)


def test_a_command_sees_only_the_variables_it_names_and_their_values_are_redacted(
        transactional_db, oncall, demo_target, tmp_path, monkeypatch):
    script = ("import os; print('token', os.environ.get('DEPLOY_TOKEN')); "
              "print('key', os.environ.get('SUPABASE_SERVICE_KEY')); "
              f"print('dsn', os.environ.get('{demo_target.dsn_env_var}'))")
    StepCommand.objects.create(name="workers_deploy", working_directory=str(tmp_path), timeout_seconds=60,
                               arguments=[sys.executable, "-c", script], passed_variables=["DEPLOY_TOKEN"])
    # The worker was started before this test: give it the token through the same pre-declared mechanism.
    import os

    token = os.environ["SUPABASE_SERVICE_KEY"]  # a value the worker has; passed under another name below
    StepCommand.objects.filter(name="workers_deploy").update(passed_variables=["SUPABASE_SERVICE_KEY"],
                                                             arguments=[sys.executable, "-c", script])
    run = engine.create_run(demo_target, oncall)
    through_validation(run, oncall)
    step = run_step(run, "step3.deploy", oncall)
    assert step.status == "succeeded"
    output = list(StepEvent.objects.filter(attempt__step=step, kind="output").values_list("message", flat=True))
    assert output[0] == "token None"  # not named: not passed
    assert output[1] == "key [redacted]" and token not in "".join(output)  # named: passed, never shown
    assert output[2] == "dsn None"  # a target's DSN is never passed to a command
