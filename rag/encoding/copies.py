"""Verified ONNX copies of models, kept once per machine so that builds skip PyTorch.

Exporting a model's copy (and quantizing it) needs PyTorch, whose import alone takes seconds.
A copy, once exported and checked against the model (rag.encoding.export), is kept in a cache
folder per model and precision; later builds of any index with that model link it into their
generation instead of exporting again. Set RAG_CACHE to choose the folder (default
~/.cache/rag), or to an empty value to keep nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path

CACHE_VERSION = 1  # the cache's layout; how a copy is made is onnx_encoder.RECIPES


def cache_root() -> Path | None:
    """Where copies are kept, or None when caching is turned off."""
    configured = os.environ.get("RAG_CACHE")
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    return Path.home() / ".cache" / "rag"


def _folder(model: str, precision: str) -> Path | None:
    from rag.encoding.model import resolve_model
    from rag.encoding.recipes import recipe_key

    root = cache_root()
    if root is None:
        return None
    name, location = resolve_model(model)
    key = hashlib.sha256(json.dumps([name, location, precision, CACHE_VERSION, *recipe_key(precision)]).encode()).hexdigest()[:16]
    return root / "onnx" / f"{Path(name).name}-{precision}-{key}"


def cached_copy(model: str, precision: str) -> Path | None:
    """The kept copy of `model` at `precision`, when there is a complete one."""
    folder = _folder(model, precision)
    if folder is None or not (folder / "config.json").is_file() or not (folder / "model.onnx").is_file():
        return None
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return folder if config.get("precision", "fp32") == precision else None


def keep_copy(source: Path, model: str, precision: str) -> None:
    """Keep a verified copy (written whole under a temporary name, then renamed into place);
    a cache that cannot be written is simply not used."""
    folder = _folder(model, precision)
    if folder is None or folder.exists():
        return
    tmp = folder.parent / f".tmp-{folder.name}-{secrets.token_hex(3)}"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, tmp)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
