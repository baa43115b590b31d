"""Settings for the test suite: the `test` mode, against the real PostgreSQL and Redis (DATABASE_URL and
REDIS_URL, or their localhost defaults)."""

import os
import tempfile

os.environ["REMS_ENV"] = "test"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# The compliance log's checkpoints and their signing key, in a folder of the test run's own (tests that compare a
# log with its checkpoints give each test a folder of its own: tests/conftest.py).
_checkpoints = os.environ.setdefault("REMS_TEST_CHECKPOINTS", tempfile.mkdtemp(prefix="rems-test-checkpoints-"))
os.environ.setdefault("LOG_CHECKPOINT_DIR", os.path.join(_checkpoints, "store"))
os.environ.setdefault("LOG_CHECKPOINT_KEY_FILE", os.path.join(_checkpoints, "key.pem"))

from .settings import *  # noqa: E402,F403

# The test database is reset between transactional tests by TRUNCATE, which the compliance log refuses unless
# the table owner asks for it in the session (see rems/compliance_log/sql.py).
_ALLOW_LOG_TRUNCATE = "-c rems.allow_log_truncate=on"
# Added to the session settings that settings.py gives every connection (its timeouts, DATABASE_ROLE).
DATABASES["default"]["OPTIONS"]["options"] = " ".join(  # noqa: F405
    part for part in (DATABASES["default"]["OPTIONS"].get("options", ""), _ALLOW_LOG_TRUNCATE) if part  # noqa: F405
)
