"""Free text and output are redacted before they are stored, whichever code path saves them.

Every TextField of the panel's models holds something a person typed (reasons, notes) or a program
printed (the live log, errors), and the JSON fields below hold error messages: all go through the one
redaction (controlpanel.targets.secrets.redact) in a pre_save receiver.
"""

from functools import cache

from django.db import models
from django.db.models.signals import post_save, pre_save

from controlpanel.targets import secrets
from controlpanel.targets.secrets import all_secret_values, redact, redact_data

PANEL_APPS = ("core", "targets", "runs", "evidence", "safety", "monitoring", "leads", "support")
JSON_TEXT_FIELDS = ("error", "detail", "last_check")


@cache
def _text_fields(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields
            if isinstance(f, models.TextField) or (isinstance(f, models.JSONField) and f.name in JSON_TEXT_FIELDS)]


def redact_instance(sender, instance, **kwargs):
    if sender._meta.app_label not in PANEL_APPS:
        return
    fields = _text_fields(sender)
    if not fields:
        return
    secrets = all_secret_values()
    for name in fields:
        value = getattr(instance, name)
        if value:
            setattr(instance, name, redact_data(value, secrets) if not isinstance(value, str)
                    else redact(value, secrets))


def _forget_secrets(sender, **kwargs):
    secrets.forget()


def connect():
    pre_save.connect(redact_instance, dispatch_uid="controlpanel.redact_instance")
    post_save.connect(_forget_secrets, sender="targets.Target", dispatch_uid="controlpanel.forget_secrets")
