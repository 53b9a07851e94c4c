"""Settings for benchmarks served by gunicorn: the panel's, with the empty floor view (bench_urls.py)."""

from controlpanel.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench_urls"
