"""The bundle's whole cycle (forward, validation, re-run, exact rollback) on every shape of the target zoo."""

import uuid

import pytest

from controlpanel.targets import zoo
from tests.helpers import targets as target_support
from tests.helpers.bundle_cycle import FORWARD, assert_bundle_cycle, bundle_dir, run_file, validate

SHAPE_SETS = [("baseline",), ("minimal",), ("strict",), ("platform",), ("platform", "strict"),
              ("minimal", "strict", "platform")]


@pytest.fixture
def zoo_copy():
    """zoo_copy(shapes, uid_variant=None) -> BuiltTarget: a fresh copy of the shared template; dropped after."""
    made = []

    def make(shapes, uid_variant=None):
        template = zoo.ensure_template(shapes, uid_variant, users=40, reports=400,
                                       server=target_support.dsn("postgres"))
        made.append(zoo.clone_target(template.admin_dsn, f"cp_t_zshape_{uuid.uuid4().hex[:8]}"))
        return made[-1]

    yield make
    for target in made:
        zoo.drop_target(target.admin_dsn)


@pytest.mark.parametrize("shapes", SHAPE_SETS, ids="+".join)
def test_the_bundle_cycle_on_each_shape(zoo_copy, shapes):
    assert_bundle_cycle(zoo_copy(shapes))


@pytest.mark.parametrize("variant", sorted(v for v in zoo.UID_VARIANTS if v != zoo.DEFAULT_UID_VARIANT))
def test_forward_and_validation_under_each_auth_uid_variant(zoo_copy, variant):
    """The validation's own impersonation must work whichever auth.uid() the installation has."""
    target = zoo_copy(("baseline",), variant)
    for name in FORWARD:
        run_file(target, name, bundle_dir())
    validate(target, bundle_dir())


@pytest.mark.parametrize("shapes", [("platform", "strict"), ("minimal", "platform")], ids="+".join)
def test_the_bundle_cycle_on_17_as_the_platform_role(pg17_server, shapes):
    target = zoo.build_target(zoo.database_dsn(pg17_server, f"zoo_t17_{uuid.uuid4().hex[:8]}"), shapes, users=40,
                              reports=400)
    try:
        assert_bundle_cycle(target)
    finally:
        zoo.drop_target(target.admin_dsn)
