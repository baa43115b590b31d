"""Settings for the test suite: the `test` mode, against the real PostgreSQL and Redis (DATABASE_URL and
REDIS_URL, or their localhost defaults)."""

import os

os.environ["REMS_ENV"] = "test"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

from .settings import *  # noqa: E402,F403
