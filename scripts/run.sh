#!/usr/bin/env bash
# Set everything up and serve the app on the seeds (the app builds the index if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
