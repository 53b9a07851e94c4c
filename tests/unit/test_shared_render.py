"""core.shared_render: one render per key and period, the previous one served while another caller renders."""

import pytest
from django.core.cache import cache

from controlpanel.core import shared_render
from controlpanel.core.shared_render import shared


@pytest.fixture(autouse=True)
def clean_cache():
    cache.clear()
    yield
    cache.clear()


class Renders:
    def __init__(self):
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"render {self.count}"


def test_callers_within_the_period_share_one_render():
    render = Renders()
    assert [shared("k", 2, render) for _ in range(5)] == ["render 1"] * 5 and render.count == 1


def test_an_expired_rendering_is_served_while_another_caller_renders_it_anew(monkeypatch):
    render, now = Renders(), [1000.0]
    monkeypatch.setattr(shared_render.time, "time", lambda: now[0])
    assert shared("k", 2, render) == "render 1"
    now[0] += 3
    cache.add("k:rendering", 1)  # someone else is rendering
    assert shared("k", 2, render) == "render 1" and render.count == 1
    cache.delete("k:rendering")
    assert shared("k", 2, render) == "render 2" and not cache.get("k:rendering")


def test_a_caller_that_must_see_its_own_change_renders_anew_and_shares_it():
    render = Renders()
    shared("k", 2, render)
    assert shared("k", 2, render, anew=True) == "render 2" and shared("k", 2, render) == "render 2"


def test_zero_seconds_renders_every_time():
    render = Renders()
    assert [shared("k", 0, render) for _ in range(3)] == ["render 1", "render 2", "render 3"]
