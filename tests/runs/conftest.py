from controlpanel.runs import engine
from controlpanel.runs.models import StepRun
from tests.helpers.waiting import wait_step


def run_step(run, key, user, **kwargs) -> StepRun:
    engine.start_step(run, key, user, confirm_target=run.target.name, **kwargs)
    return wait_step(run, key)


def complete_prerequisites(run, user, through="pre.assessment"):
    """Walk the pre-migration phase as a person would (ticks + panel verification)."""
    from controlpanel.runs.driver import drive

    drive(run.pk, through=through, sign_off_as=user.pk, operator=user, timeout_per_step=120)
