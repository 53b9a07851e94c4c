"""Support's data: whom to call (contacts, escalation levels) and briefly stored membership lookups."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from controlpanel.runbook.definition import Area
from controlpanel.targets.models import Target

# A lookup result holds personal data: it is kept only long enough to be read.
LOOKUP_RETENTION = timedelta(hours=1)


class Contact(models.Model):
    """Who to call for an area of the runbook ("Contacts and Escalation")."""

    area = models.CharField(max_length=32, choices=[(a.value, a.value.capitalize()) for a in Area])
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=200, blank=True)
    how_to_reach = models.CharField(max_length=300, blank=True, help_text="Phone, chat channel or pager.")
    emergency = models.BooleanField(default=False, help_text="Emergency contact for the area.")

    class Meta:
        ordering = ["area", "-emergency", "name"]

    def __str__(self):
        return f"{self.name} ({self.area})"


class EscalationLevel(models.Model):
    level = models.PositiveSmallIntegerField(unique=True)
    who = models.CharField(max_length=300)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["level"]

    def __str__(self):
        return f"Level {self.level}: {self.who}"


class LookupResult(models.Model):
    """One membership lookup: asked in the web app, answered by a Celery task, read by the requester."""

    class Kind(models.TextChoices):
        PERSON = "person", "Person (email or user id)"
        ORGANIZATION = "organization", "Organization (slug or name)"
        WITHOUT_MEMBERSHIP = "without_membership", "Users without organization membership"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    query = models.CharField(max_length=320, blank=True)
    page = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    elapsed_ms = models.FloatField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.kind} lookup {self.pk} on {self.target}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @classmethod
    def purge_expired(cls, now=None) -> int:
        return cls.objects.filter(created_at__lt=(now or timezone.now()) - LOOKUP_RETENTION).delete()[0]
