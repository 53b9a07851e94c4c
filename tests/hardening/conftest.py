import pytest


@pytest.fixture
def paper_target(db):
    """A target row whose database is never reached (for state-machine and page tests: no clone needed)."""
    from controlpanel.targets.models import Target

    return Target.objects.create(name="demo", environment="demo", dsn_env_var="CP_TEST_UNREACHABLE_DSN")
