"""`make up`'s set-up command is idempotent: running it twice creates nothing twice and fails on nothing."""

import os

import psycopg
import pytest
from django.core.management import call_command

from tests.helpers import targets as target_support


@pytest.mark.django_db
def test_bootstrap_demo_twice(monkeypatch):
    from django.contrib.auth.models import Group, User

    dsn = target_support.dsn("cp_test_bootstrap_demo")
    target_support.drop(dsn)
    monkeypatch.setenv("DEMO_TARGET_DSN", dsn)
    try:
        call_command("bootstrap_demo", "--users", "30", "--reports", "200")
        call_command("bootstrap_demo", "--users", "30", "--reports", "200")
        assert sorted(User.objects.values_list("username", flat=True)) == ["lead", "oncall", "support"]
        assert Group.objects.count() == 3
        assert User.objects.get(username="lead").groups.get().name == "Lead"
        with psycopg.connect(os.environ["DEMO_TARGET_DSN"]) as conn:
            assert conn.execute("SELECT count(*) FROM public.audit_reports").fetchone()[0] == 200
    finally:
        target_support.drop(dsn)
