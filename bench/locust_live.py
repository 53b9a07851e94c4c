"""Locust users for bench_live.py: each viewer (already signed in) polls the live fragment every 2 s."""

import itertools
import os

from locust import HttpUser, constant, task

FRAGMENT = os.environ["BENCH_FRAGMENT_PATH"]
SESSIONS = itertools.cycle(os.environ["BENCH_SESSIONS"].split(","))


class Viewer(HttpUser):
    wait_time = constant(2)

    def on_start(self):
        # Signed in beforehand (bench_live.py makes one session per viewer): a login's deliberately slow
        # password hash is not what this measures.
        self.client.cookies.set("sessionid", next(SESSIONS))

    @task
    def poll(self):
        self.client.get(FRAGMENT, headers={"HX-Request": "true"}, name="live fragment")
