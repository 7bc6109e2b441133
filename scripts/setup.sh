#!/usr/bin/env bash
# Create .venv and install the project. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# The CPU build of torch lies on the machine; install it before anything can ask pip
# for torch, otherwise pip resolves the newest release with several GB of CUDA packages.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    .venv/bin/pip install --quiet "torch==2.13.0" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
# The machine's local package mirror prints a harmless warning per missing folder; hide only those.
.venv/bin/pip install --quiet -e ".[dev]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
.venv/bin/python -c "import rag" \
    || { echo "setup failed: the rag package does not import; see the pip output above" >&2; exit 1; }
