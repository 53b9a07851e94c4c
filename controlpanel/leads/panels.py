"""Panels the leads area adds to the home and run pages (declared in controlpanel/panels.py)."""

from controlpanel.core import roles

from . import approvals, escalation
from .forms import DecisionForm, EscalateForm
from .models import Approval


def approvals_panel(request, run):
    """Production runs: lead approvals of Step 1 and emergency rollback, and how to ask for them."""
    if not run.is_production or not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return None
    actions = []
    for action in Approval.Action:
        actions.append({
            "action": action, "valid": approvals.valid_approval(run, action),
            "pending": approvals.pending_request(run, action),
        })
    return "leads/_approvals_panel.html", {
        "run": run, "actions": actions,
        "history": run.approvals.select_related("requested_by", "approved_by"),
        "can_decide": request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)),
        "can_request": request.user.has_perm(roles.perm(roles.OPERATE_RUNS)),
        "user_id": request.user.pk,
        "decision_form": DecisionForm(initial={"digest": run.checksum_digest}),
    }


def approvals_inbox(request):
    """A lead's home page: every approval request waiting for a decision, oldest first."""
    if not request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        return None
    waiting = (Approval.objects.filter(decision=Approval.Decision.PENDING).select_related("run__target", "requested_by")
               .order_by("requested_at"))
    return "leads/_approvals_inbox.html", {"waiting": list(waiting[:50]), "user_id": request.user.pk}


def escalation_panel(request, run):
    """A failed or interrupted step shows whom to call for its area and the next escalation level."""
    if not request.user.has_perm(roles.perm(roles.VIEW_RUNS)):
        return None
    rows = escalation.help_for_failed_steps(run)
    if not rows:
        return None
    can_escalate = (request.user.has_perm(roles.perm(roles.OPERATE_RUNS))
                    or request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)))
    return "leads/_escalation_panel.html", {"run": run, "rows": rows, "can_escalate": can_escalate,
                                            "form": EscalateForm()}


def lead_links_panel(request, run):
    if not request.user.has_perm(roles.perm(roles.LEAD_ACTIONS)):
        return None
    return "leads/_links_panel.html", {"run": run}
