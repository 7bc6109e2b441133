"""Start-up for the app: make sure the index matches the sources, then load what serving needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import RagError
from .search import Searcher
from .store import current_generation, open_index, read_manifest, read_texts
from .webui import Backend


def index_model(index: Path) -> str | None:
    """The model an existing index was built with, if there is a readable index."""
    try:
        return read_manifest(index).model
    except RagError:
        return None


def ensure_index(sources: Path, index: Path, encoder, log: Callable[[str], None]) -> None:
    """Bring the index up to date with the sources; an up-to-date one is left as it is."""
    from .build import build_index

    report = build_index(
        sources,
        index,
        encoder,
        progress=True,
        warn=lambda m: log(f"warning: {m}"),
        log=lambda m: log(f"building the index in {index} ({m})"),
    )
    if not report.up_to_date:
        log(f"indexed {report.documents} sources into {report.passages} passages in {report.seconds:.1f} s")


def open_backend(index: Path, encoder) -> Backend:
    """The current generation, ready to serve, with the source texts it was built from."""
    opened = open_index(index)
    return Backend(searcher=Searcher(opened, encoder), texts=read_texts(opened.path))


def current_name(index: Path) -> str | None:
    gen = current_generation(index)
    return gen.name if gen else None
