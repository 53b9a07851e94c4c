"""The health history stays small: everything for a week, one per day until 90 days, nothing after."""

from datetime import timedelta

from django.utils import timezone

from controlpanel.monitoring.models import HealthCheck
from controlpanel.monitoring.pruning import prune_health_history
from controlpanel.targets.models import Target


def test_it_keeps_recent_checks_downsamples_old_ones_and_deletes_expired(db):
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    a = Target.objects.create(name="a", environment="demo", dsn_env_var="A_DSN")
    b = Target.objects.create(name="b", environment="demo", dsn_env_var="B_DSN")
    made = {}
    for target in (a, b):
        for days in (1, 3, 10, 40, 100):
            for hour in (1, 5, 9):  # three checks a day
                at = now - timedelta(days=days) + timedelta(hours=hour)
                made[(target.name, days, hour)] = HealthCheck.objects.create(target=target, checked_at=at).pk

    result = prune_health_history(now=now, keep_all_days=7, keep_days=90)

    left = set(HealthCheck.objects.values_list("pk", flat=True))
    for target in ("a", "b"):
        for days in (1, 3):
            assert {made[(target, days, h)] for h in (1, 5, 9)} <= left  # all kept within a week
        for days in (10, 40):
            kept = {h for h in (1, 5, 9) if made[(target, days, h)] in left}
            assert kept == {9}  # the last check of the day
        assert not {made[(target, 100, h)] for h in (1, 5, 9)} & left
    assert result == {"expired": 6, "downsampled": 8, "kept_daily": 4}
    assert prune_health_history(now=now, keep_all_days=7, keep_days=90) == {"expired": 0, "downsampled": 0,
                                                                            "kept_daily": 4}


def test_ages_come_from_settings(db, settings):
    now = timezone.now()
    target = Target.objects.create(name="a", environment="demo", dsn_env_var="A_DSN")
    HealthCheck.objects.create(target=target, checked_at=now - timedelta(days=3))
    settings.MONITORING_KEEP_DAYS = 2
    settings.MONITORING_KEEP_ALL_DAYS = 1
    assert prune_health_history(now=now)["expired"] == 1
