#!/usr/bin/env bash
# Run the service: installs what is missing, migrates, seeds the demo data, starts the API, a Celery worker
# and Celery beat, and prints where the API docs are and the demo keys. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
exec .venv/bin/python scripts/devserver.py "$@"
