from celery import shared_task

from . import lookups
from .models import LookupResult


@shared_task
def run_lookup(lookup_id: int) -> None:
    """Default queue: answer a membership lookup and store the result for the polling page."""
    lookup = LookupResult.objects.select_related("target").filter(pk=lookup_id).first()
    if lookup is not None and lookup.is_pending:
        lookups.perform(lookup)
