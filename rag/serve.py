"""Start-up for the app: make sure the index matches the sources, then load what serving needs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from .errors import RagError
from .search import Searcher
from .sources import discover
from .store import current_generation, open_index, read_manifest, read_texts
from .types import Manifest
from .webui import Backend


def source_hashes(sources: Path) -> dict[str, str]:
    """SHA-256 of every source file's bytes, by source id."""
    return {
        path.relative_to(sources).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in discover(sources)
    }


def stale_reason(manifest: Manifest, hashes: dict[str, str]) -> str | None:
    """Why an index no longer matches the sources, or None when it does. Files the index
    skipped as empty are not counted as changes."""
    indexed = {name: record.sha256 for name, record in manifest.sources.items()}
    added = sorted(set(hashes) - set(indexed))
    removed = sorted(set(indexed) - set(hashes))
    changed = sorted(n for n in set(hashes) & set(indexed) if hashes[n] != indexed[n])
    parts = [f"{len(v)} {label}" for v, label in ((added, "new"), (changed, "changed"), (removed, "removed")) if v]
    return ", ".join(parts) + " source file(s)" if parts else None


def index_model(index: Path) -> str | None:
    """The model an existing index was built with, if there is a readable index."""
    try:
        return read_manifest(index).model
    except RagError:
        return None


def ensure_index(sources: Path, index: Path, encoder, log: Callable[[str], None]) -> None:
    """Build the index when it is missing or out of date with the sources."""
    from .build import build_index

    hashes = source_hashes(sources)
    try:
        manifest = read_manifest(index)
        reason = stale_reason(manifest, hashes)
        if reason is None and manifest.model != encoder.name:
            reason = f"it was built with {manifest.model}"
    except RagError:
        reason = "there is no index yet"
    if reason is None:
        return
    log(f"building the index in {index} ({reason})")
    report = build_index(sources, index, encoder, progress=True, warn=lambda m: log(f"warning: {m}"))
    log(f"indexed {report.documents} sources into {report.passages} passages in {report.seconds:.1f} s")


def open_backend(index: Path, encoder) -> Backend:
    """The current generation, ready to serve, with the source texts it was built from."""
    opened = open_index(index)
    return Backend(searcher=Searcher(opened, encoder), texts=read_texts(opened.path))


def current_name(index: Path) -> str | None:
    gen = current_generation(index)
    return gen.name if gen else None
