"""Property: on ANY installation within DESIGN.md's contract the bundle's whole cycle holds (forward,
validation without FAILED, idempotent re-run, exact rollback). Hypothesis generates the installations from the
target zoo's shapes plus what the contract allows to vary: extra nullable and NOT NULL-with-default columns,
the optional waitlist present or absent, other owner-policy names, extra views over tenant tables."""

import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from controlpanel.targets import zoo
from tests.helpers import targets as target_support
from tests.helpers.bundle_cycle import assert_bundle_cycle

TENANT = ("profiles", "audit_reports", "automation_jobs", "generated_automations")
EXTRA_TYPES = ("text", "integer", "jsonb", "integer NOT NULL DEFAULT 0", "jsonb NOT NULL DEFAULT '{}'::jsonb",
               "timestamptz NOT NULL DEFAULT now()", "boolean NOT NULL DEFAULT false")
WAITLIST = (zoo.BASELINE_DIR / "02_optional_waitlist.sql").read_text()
# Owner policies (those on auth.uid()) renamed to names no file could know.
RENAME_POLICIES = """
DO $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT tablename, policyname FROM pg_policies
           WHERE schemaname = 'public' AND coalesce(qual, '') || coalesce(with_check, '') LIKE '%auth.uid()%'
  LOOP
    EXECUTE format('ALTER POLICY %I ON public.%I RENAME TO %I', p.policyname, p.tablename,
                   'own ' || p.tablename || ' ' || substr(md5(p.policyname), 1, 6));
  END LOOP;
END
$$
"""


@dataclass(frozen=True)
class Installation:
    """One generated installation: zoo shapes plus the variations the contract allows (short repr on failure)."""

    shapes: tuple[str, ...]
    waitlist: bool
    columns: tuple[tuple[str, str], ...]  # (table, type) of extra columns
    renamed_policies: bool
    views: tuple[tuple[str, bool], ...]  # (table, security_invoker)

    def extra_sql(self) -> tuple[str, ...]:
        extra = []
        if self.waitlist and self.shapes[0] == "minimal":
            extra.append(WAITLIST)
        if not self.waitlist and self.shapes[0] == "baseline":
            extra.append("DROP TABLE public.waitlist")
        extra += [f"ALTER TABLE public.{table} ADD COLUMN zoo_extra_{n} {kind}"
                  for n, (table, kind) in enumerate(self.columns)]
        if self.renamed_policies:
            extra.append(RENAME_POLICIES)
        extra += [f"CREATE VIEW public.zoo_view_{table}{' WITH (security_invoker = true)' if invoker else ''}"
                  f" AS SELECT * FROM public.{table}" for table, invoker in self.views]
        return tuple(extra)


installations = st.builds(
    Installation,
    shapes=st.tuples(st.sampled_from(("baseline", "minimal")), st.booleans(), st.booleans()).map(
        lambda t: (t[0], *(["strict"] if t[1] else []), *(["platform"] if t[2] else []))),
    waitlist=st.booleans(),
    columns=st.lists(st.tuples(st.sampled_from(TENANT), st.sampled_from(EXTRA_TYPES)), max_size=3).map(tuple),
    renamed_policies=st.booleans(),
    views=st.lists(st.tuples(st.sampled_from(TENANT), st.booleans()), max_size=2,
                   unique_by=lambda v: v[0]).map(tuple),
)


@settings(max_examples=6, deadline=None, database=None, derandomize=True,
          phases=(Phase.explicit, Phase.generate),  # no shrinking: each example builds a database
          suppress_health_check=[HealthCheck.too_slow])
@given(installation=installations)
def test_the_bundle_cycle_holds_on_any_installation_within_the_contract(installation):
    target = zoo.build_target(target_support.dsn(f"cp_t_zprop_{uuid.uuid4().hex[:8]}"), installation.shapes,
                              users=12, reports=80, extra_sql=installation.extra_sql(), analyze=False, vacuum=False)
    try:
        assert_bundle_cycle(target)
    finally:
        zoo.drop_target(target.admin_dsn)
