from celery import shared_task

from .checks import check_and_store
from .models import Target


@shared_task
def check_target_task(target_id: int) -> dict:
    return check_and_store(Target.objects.get(pk=target_id)).as_dict()
