"""Locust users for bench_live.py: each viewer logs in once, then polls the live fragment every 2 s."""

import os
import re

from locust import HttpUser, constant, task

FRAGMENT = os.environ["BENCH_FRAGMENT_PATH"]


class Viewer(HttpUser):
    wait_time = constant(2)

    def on_start(self):
        page = self.client.get("/login/", name="login page")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        self.client.post("/login/", {"username": os.environ["BENCH_USER"], "password": os.environ["BENCH_PASSWORD"],
                                     "csrfmiddlewaretoken": token}, headers={"Referer": self.host + "/login/"},
                         name="login")

    @task
    def poll(self):
        self.client.get(FRAGMENT, headers={"HX-Request": "true"}, name="live fragment")
