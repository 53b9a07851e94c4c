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

from .settings import *  # noqa: E402,F403
