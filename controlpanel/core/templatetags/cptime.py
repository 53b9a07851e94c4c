"""`{{ value|when }}`: a moment in the viewer's time zone with the zone named, from a datetime or an ISO string
(lookup results and exports keep ISO strings)."""

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format

register = template.Library()


@register.filter
def when(value, fmt: str = "Y-m-d H:i:s T"):
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, UTC)
        return date_format(timezone.localtime(value), fmt)
    return value
