"""The lints judge typed catalog records: no database needed."""

from controlpanel.evidence import lints
from controlpanel.targets.security import Function, Policy, SecurityModel, Table

MEMBERS = Table("public", "organization_memberships", True, ("id", "organization_id", "user_id", "role"))
ORGS = Table("public", "organizations", True, ("id", "name"))
REPORTS = Table("public", "audit_reports", True, ("id", "user_id", "organization_id"))


def model(*policies, functions=()):
    return SecurityModel((MEMBERS, ORGS, REPORTS), tuple(policies), tuple(functions), (), (), (), ("anon",))


def policy(table, qual=None, check=None, cmd="SELECT", name="p"):
    return Policy("public", table, name, cmd, ("authenticated",), qual, check, True)


def codes(m):
    return {f.code for f in lints.run_lints(m)}


def test_null_organization_and_null_uid_disjuncts_are_found_but_a_plain_test_is_not():
    assert "null_disjunct" in codes(model(policy("audit_reports", "organization_id IS NULL OR organization_id = x")))
    assert "null_disjunct" in codes(model(policy("audit_reports", "((SELECT auth.uid()) IS NULL) OR user_id = y")))
    assert "null_disjunct" not in codes(model(policy("audit_reports", "organization_id = x AND user_id IS NULL")))


def test_a_policy_reading_its_own_table_recurses_directly_or_through_an_invoker_function():
    direct = policy("organization_memberships", "organization_id IN (SELECT m.organization_id "
                                                "FROM organization_memberships m WHERE m.user_id = auth.uid())")
    assert "policy_recursion" in codes(model(direct))
    body = "SELECT organization_id FROM public.organization_memberships WHERE user_id = auth.uid()"
    invoker = Function("public", "my_orgs", "public.my_orgs()", "f", "sql", False, ("search_path=",), body, (), "s")
    via = policy("organization_memberships", "organization_id IN (SELECT public.my_orgs())")
    assert "policy_recursion" in codes(model(via, functions=[invoker]))
    definer = Function(*[getattr(invoker, f) for f in ("schema", "name", "signature", "kind", "language")], True,
                       ("search_path=",), body, (), "s")
    assert "policy_recursion" not in codes(model(via, functions=[definer]))


def test_membership_writes_must_be_restricted_to_administered_organizations():
    selfish = policy("organization_memberships", None, "user_id = (SELECT auth.uid())", cmd="INSERT")
    admin = policy("organization_memberships", None,
                   "organization_id = ANY (ARRAY(SELECT public.user_admin_organization_ids()))", cmd="INSERT")
    assert "membership_self_escalation" in codes(model(selfish))
    assert "membership_self_escalation" not in codes(model(admin))


def test_a_bare_column_bound_to_the_inner_table_is_named():
    found = lints.inner_binding(model(policy(
        "organizations", "EXISTS (SELECT 1 FROM organization_memberships m WHERE m.organization_id = m.id)",
        cmd="UPDATE")))
    assert [f.object for f in found] == ["policy p on public.organizations: id"]
    good = policy("organizations", "EXISTS (SELECT 1 FROM organization_memberships m "
                                   "WHERE m.organization_id = organizations.id)")
    assert not lints.inner_binding(model(good))


def test_always_true_and_user_metadata():
    assert "policy_always_true" in codes(model(policy("organizations", "true")))
    meta = policy("audit_reports", "((auth.jwt() -> 'user_metadata') ->> 'org') = organization_id::text")
    assert "rls_references_user_metadata" in codes(model(meta))


def test_new_findings_keeps_only_what_the_migration_added():
    old = lints.Finding("x", "high", "public.t", "m", "f")
    new = lints.Finding("y", "high", "public.t", "m", "f")
    assert lints.new_findings([old.as_dict()], [old, new]) == [new]
