#!/usr/bin/env bash
# Check the layers (Import Linter: the contracts in pyproject.toml), then run the test suite against the real
# PostgreSQL and Redis: DATABASE_URL and REDIS_URL if set, otherwise postgresql://postgres@127.0.0.1:5432 and
# redis://127.0.0.1:6379/15. Arguments go to pytest. The browser tests need the system's Chromium, installed here
# if it is missing (scripts/install-browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
scripts/install-browser.sh
.venv/bin/lint-imports --no-cache
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/15}"
exec .venv/bin/python -m pytest "$@"
