"""A failed step shows whom to call; escalating records who was asked, when and why, and notifies."""

import pytest
from django.core import mail
from django.urls import reverse

from controlpanel.core.models import AuditEvent
from controlpanel.leads.models import Escalation
from controlpanel.runs import engine
from controlpanel.runs.models import StepRun
from controlpanel.support.models import Contact, EscalationLevel

from .conftest import finish_step


@pytest.fixture
def failed_run(cast, make_target):
    run = engine.create_run(make_target("stage-f", "staging"), cast["alice"])
    finish_step(run, "step3.check", cast["alice"], status=StepRun.Status.FAILED,
                error={"message": "Workers database check failed."})
    return run


def test_runbook_defaults_are_seeded(db):
    assert set(Contact.objects.values_list("area", flat=True)) == {"database", "workers", "frontend",
                                                                   "infrastructure"}
    assert list(EscalationLevel.objects.values_list("level", flat=True)) == [1, 2, 3]
    assert Contact.objects.get(area="workers", emergency=False).name == "Cloudflare Workers Specialist"


def test_failed_step_shows_area_contact_and_next_level(client, cast, failed_run):
    client.force_login(cast["alice"])
    html = client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert 'data-panel="escalation"' in html
    assert "Cloudflare Workers Specialist" in html and 'data-next-level="1"' in html
    assert "Development team member" in html


def test_no_panel_without_a_failed_step(client, cast, finished_run):
    client.force_login(cast["alice"])
    assert 'data-panel="escalation"' not in client.get(reverse("runs:detail", args=[finished_run.pk])).content.decode()


def test_escalate_records_audits_notifies_and_moves_up(client, cast, failed_run, settings):
    settings.NOTIFY_EMAILS = ["oncall-leads@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(cast["alice"])
    url = reverse("leads:escalate", args=[failed_run.pk])
    client.post(url, {"step": "step3.check", "reason": "service role cannot read organizations"})
    first = Escalation.objects.get(run=failed_run)
    assert first.level == 1 and first.asked_by == cast["alice"] and first.delivered_via == ["email"]
    assert "Development team member" in first.contact and "Cloudflare Workers Specialist" in first.contact
    assert AuditEvent.objects.filter(action="step.escalate", username="alice", detail__level=1).exists()
    assert len(mail.outbox) == 1 and "Escalation level 1" in mail.outbox[0].subject
    assert "service role cannot read organizations" in mail.outbox[0].body
    html = client.get(reverse("runs:detail", args=[failed_run.pk])).content.decode()
    assert 'data-next-level="2"' in html
    client.post(url, {"step": "step3.check", "reason": "still failing"})
    client.post(url, {"step": "step3.check", "reason": "CTO please"})
    response = client.post(url, {"step": "step3.check", "reason": "again"}, follow=True)
    assert list(Escalation.objects.filter(run=failed_run).values_list("level", flat=True)) == [1, 2, 3]
    assert "Every escalation level has already been asked" in response.content.decode()


def test_escalation_appears_in_the_timeline(client, cast, failed_run):
    client.force_login(cast["alice"])
    client.post(reverse("leads:escalate", args=[failed_run.pk]), {"step": "step3.check", "reason": "need help"})
    client.force_login(cast["lena"])
    chronology = client.get(reverse("leads:timeline", args=[failed_run.pk])).context["chronology"]
    assert ("alice", "step.escalate") in [(e["who"], e["what"]) for e in chronology]


def test_support_cannot_escalate(client, cast, failed_run):
    client.force_login(cast["sam"])
    client.post(reverse("leads:escalate", args=[failed_run.pk]), {"step": "step3.check", "reason": "x"})
    assert not Escalation.objects.exists()
