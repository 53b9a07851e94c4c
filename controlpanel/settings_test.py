"""Settings for the test suite: the production settings, with what a test session needs to start.

The test server speaks plain http, so HTTPS is off; a key is generated per session (and passed on to the
workers the tests start, which inherit the environment).
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", "tests-" + secrets.token_urlsafe(48))
os.environ.setdefault("HTTPS", "0")
# Tests read the run page right after changing what it shows; tests/runs/test_run_page_cache.py turns it on.
os.environ.setdefault("SHARED_RENDER_SECONDS", "0")
# Every data assessment measures the access map: on the suite's 200-user targets a stratified 24 keeps it to a
# second or two (workers inherit this); the access-diff tests choose their own sample.
os.environ.setdefault("ACCESS_ALL_USERS_UP_TO", "24")
os.environ.setdefault("ACCESS_SAMPLE_USERS", "24")

from .settings import *  # noqa: E402,F403
