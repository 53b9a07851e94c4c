"""The audit log page: search, filters by person and action, CSV export; read-only."""

import csv
import io

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from controlpanel.core import audit
from controlpanel.core.models import AuditEvent


@pytest.fixture
def events(cast):
    audit.record("run.create", user=cast["alice"], target="stage-1")
    audit.record("gate.override", user=cast["lena"], reason="rehearsal on a copy")
    audit.record("support.lookup", user=cast["sam"], kind="person")
    return AuditEvent.objects.all()


def listed(response):
    return [(e.username, e.action) for e in response.context["page"].object_list]


def test_filters_by_person_and_action_and_searches(client, cast, events):
    client.force_login(cast["lena"])
    url = reverse("leads:audit")
    assert len(listed(client.get(url))) == 3
    assert listed(client.get(url, {"person": "alice"})) == [("alice", "run.create")]
    assert listed(client.get(url, {"action": "gate.override"})) == [("lena", "gate.override")]
    assert listed(client.get(url, {"q": "lookup"})) == [("sam", "support.lookup")]
    assert listed(client.get(url, {"person": "alice", "action": "gate.override"})) == []


def test_csv_export_respects_filters(client, cast, events):
    client.force_login(cast["lena"])
    response = client.get(reverse("leads:audit_export"), {"person": "lena"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["username"], r["action"]) for r in rows] == [("lena", "gate.override")]
    assert "rehearsal on a copy" in rows[0]["detail"]


def test_the_log_cannot_be_edited(cast, events):
    event = events.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")


def test_page_offers_no_edit_controls(client, cast, events):
    client.force_login(cast["lena"])
    html = client.get(reverse("leads:audit")).content.decode()
    assert 'method="post"' not in html.split('id="main"')[1]
