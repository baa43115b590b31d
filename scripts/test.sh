#!/usr/bin/env bash
# Run the test suite against the real PostgreSQL and Redis: DATABASE_URL and REDIS_URL if set, otherwise
# postgresql://postgres@127.0.0.1:5432 and redis://127.0.0.1:6379/15. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
exec .venv/bin/python -m pytest "$@"
