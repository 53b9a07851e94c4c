"""Locust users for bench_live.py: each viewer (already signed in) polls one page every 2 s."""

import itertools
import os

from locust import HttpUser, constant, task

PATH = os.environ["BENCH_PATH"]
NAME = os.environ.get("BENCH_NAME", "page")
SESSIONS = itertools.cycle(os.environ["BENCH_SESSIONS"].split(","))


class Viewer(HttpUser):
    wait_time = constant(2)

    def on_start(self):
        # Signed in beforehand (bench_live.py makes one session per viewer): a login's deliberately slow
        # password hash is not what this measures.
        self.client.cookies.set("sessionid", next(SESSIONS))

    @task
    def poll(self):
        self.client.get(PATH, headers={"HX-Request": "true"}, name=NAME)
