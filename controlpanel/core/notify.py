"""Notifications through pluggable channels: email (Django's mail backend) and an optional webhook."""

import json
import logging
import urllib.request

from django.conf import settings
from django.core.mail import send_mail

from controlpanel.targets.secrets import redact, redact_data

log = logging.getLogger(__name__)


class EmailChannel:
    name = "email"

    def __init__(self, recipients=None):
        self.recipients = recipients if recipients is not None else settings.NOTIFY_EMAILS

    def send(self, subject: str, body: str, data: dict) -> bool:
        if not self.recipients:
            return False
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, self.recipients)
        return True


class WebhookChannel:
    name = "webhook"

    def __init__(self, url=None, timeout: float = 5.0):
        self.url = url if url is not None else settings.NOTIFY_WEBHOOK_URL
        self.timeout = timeout

    def send(self, subject: str, body: str, data: dict) -> bool:
        if not self.url:
            return False
        payload = json.dumps({"subject": subject, "text": body, "data": data}, default=str).encode()
        request = urllib.request.Request(self.url, data=payload, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
            return 200 <= response.status < 300


def channels():
    return [EmailChannel(), WebhookChannel()]


def notify(subject: str, body: str, **data) -> list[str]:
    """Send through every configured channel; returns the names that accepted it. Never raises.
    Nothing secret leaves: subject, body and data are redacted first."""
    subject, body, data = redact(subject), redact(body), redact_data(data)
    delivered = []
    for channel in channels():
        try:
            if channel.send(subject, body, data):
                delivered.append(channel.name)
        except Exception as exc:  # a broken channel must not break the step or check that notifies
            log.warning("notification via %s failed: %s", channel.name, type(exc).__name__)
    return delivered
