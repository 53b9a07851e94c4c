"""A lead's sign-off of one blocking lint finding (rule × file × statement digest), audited."""

from controlpanel.core import audit, roles
from controlpanel.runs.errors import StepRefused

from .models import LintSignOff


def sign_off_lint(user, *, rule: str, file: str, statement_digest: str, reason: str, request=None) -> LintSignOff:
    if not user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        raise StepRefused("Only a lead can sign off a blocking lint finding.")
    if not reason.strip():
        raise StepRefused("A sign-off needs a reason (why this statement is safe on this installation).")
    signoff, _ = LintSignOff.objects.update_or_create(
        rule=rule, file=file, statement_digest=statement_digest, defaults={"reason": reason, "signed_by": user})
    audit.record("lint.sign_off", user=user, request=request, obj=signoff, rule=rule, file=file,
                 statement_digest=statement_digest, reason=reason)
    return signoff
