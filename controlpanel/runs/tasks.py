"""Celery entry points: thin wrappers over functions tests call directly."""

from celery import shared_task

from . import engine, runner


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def execute_step(self, attempt_id: int) -> str | None:
    return runner.execute(attempt_id, worker=self.request.hostname or "")


@shared_task
def reap_stale_steps() -> list[int]:
    return engine.reap_stale_steps()


@shared_task
def drive_run(run_id: int, through: str | None, sign_off_as: int | None) -> str:
    from .driver import drive

    return drive(run_id, through=through, sign_off_as=sign_off_as)
