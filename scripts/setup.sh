#!/usr/bin/env bash
# Create .venv and install the project with the versions CI passed with (constraints.txt).
# Safe to run again: it only installs what is missing. Needs Python 3.10+ and about 2.2 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "setup: Python 3.10 or newer is needed (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    echo "setup [1/3]: creating .venv with $("$PY" --version 2>&1)" >&2
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/pip --disable-pip-version-check)
quiet_mirror() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }
progress() { grep --line-buffered -E "^(Collecting|Installing collected|Successfully installed)" | sed -u 's/^/setup: /' >&2 || true; }
# PyTorch first, as the CPU build: anything later that asks for torch is then satisfied, so pip
# never fetches a several-GB CUDA build. A machine whose package index lacks the CPU build gets
# it from PyTorch's CPU index.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "setup [2/3]: installing PyTorch 2.13.0 (CPU build, about 200 MB)" >&2
    if ! "${PIP[@]}" install "torch==2.13.0+cpu" 2> >(quiet_mirror) | progress; then
        "${PIP[@]}" install "torch==2.13.0+cpu" --index-url https://download.pytorch.org/whl/cpu | progress
    fi
    .venv/bin/python -W ignore -c "import torch" 2>/dev/null || { echo "setup failed: PyTorch did not install; see the pip output above" >&2; exit 1; }
fi
if ! .venv/bin/python -c "import rag, gradio, sentence_transformers, faiss, bm25s, onnxruntime, playwright, pymilvus, milvus_lite" >/dev/null 2>&1 \
        || [ constraints.txt -nt .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "setup [3/3]: installing rag and its dependencies (versions from constraints.txt; a minute or two the first time)" >&2
    "${PIP[@]}" install -c constraints.txt -e ".[dev]" 2> >(quiet_mirror) | progress
    touch .venv/.installed
fi
.venv/bin/python -c "import rag" \
    || { echo "setup failed: the rag package does not import; see the pip output above" >&2; exit 1; }
# The project's own modules compiled now, as pip compiles every package it installs: an editable
# install is not, and where PYTHONDONTWRITEBYTECODE is set every start would compile them again
# (docs/speed.md, "Queries and cold start"). Modules already compiled are skipped.
if ! compiled=$(.venv/bin/python -m compileall -q rag 2>&1); then
    echo "$compiled" >&2
    echo "setup: could not compile rag's modules (above); they are compiled at each start instead" >&2
fi
