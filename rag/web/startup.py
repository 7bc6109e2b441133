"""Start-up for the app: make sure the index matches the sources, then load what serving needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.answer import Searcher, SourceWatch
from rag.encoding import question_encoder  # noqa: F401  (app.py imports it from here)
from rag.errors import RagError
from rag.index import Index, current_generation, inspect_index, is_locked, open_with
from rag.web.state import Backend

if TYPE_CHECKING:
    from rag.locations import Location
    from rag.types import Document


def ensure_index(
    sources: Path, index: Path, log: Callable[[str], None], load_model: Callable[[str | None], Any] | None = None,
    checked: Callable[[], object] | None = None,
) -> Any:
    """Bring the index up to date with the sources, keeping its model and chunking settings.
    `checked` is called once the sources have been compared with the index, before any build
    (the app starts Gradio's import then, so that it runs beside the build but not beside the
    comparison's many small reads).

    Returns the model when it had to be loaded to build, else None: an up-to-date index is
    checked from its manifest, without importing torch."""
    from rag.encoding import resolve_model
    from rag.index import build_encoder, build_index, existing_settings, same_sources, up_to_date

    state = inspect_index(index)
    if state.problem in ("newer", "damaged"):
        raise RagError(state.message)
    model, config = existing_settings(state)

    def current(digests: Mapping[str, str]) -> bool:  # the sources first: the model is resolved only when they match
        return (state.manifest is not None and same_sources(state.manifest, digests)
                and up_to_date(index, resolve_model(model)[0], config, digests) is not None)

    built_at = state.manifest.built_at if state.manifest is not None else None
    docs = _changed_documents(sources, current, built_at, log)
    if checked is not None:
        checked()
    if docs is None:
        return None
    if is_locked(index):  # readers never wait for a writer
        if state.manifest is not None:
            log(f"another process is building the index in {index}; serving the current generation until it switches")
            return None
        raise RagError(f"another process is building the first index in '{index}'; start the app when it has finished")
    encoder = build_encoder(state, model, None, load_model)
    try:
        report = build_index(
            sources,
            index,
            encoder,
            config,
            progress=True,
            documents=docs,
            log=lambda m: log(f"building the index in {index} ({m})"),
        )
    except RagError:
        if state.manifest is None or not is_locked(index):
            raise
        log(f"another process started building the index in {index}; serving the current generation until it switches")
        return encoder
    if not report.up_to_date:
        log(f"indexed {report.documents} sources into {report.passages} passages in {report.seconds:.1f} s")
    return encoder


def _changed_documents(sources: Path, current: Callable[[Mapping[str, str]], bool], built_at: str | None,
                       log: Callable[[str], None]) -> list[Document] | None:
    """The sources' documents when they are not what the index was built from (`current` says
    whether their digests are), else None. The files' bytes are checked first, so an index that
    is up to date never has its sources parsed. A bad source file while an index exists
    (`built_at` is its build time) is logged and gives None: the app goes on answering from the
    index as built; with no index, it raises."""
    from rag.sources import digests_of, load_documents, matching_digests

    def warn(message: str) -> None:
        log(f"warning: {message}")

    if built_at is not None and matching_digests(sources, current, warn) is not None:
        return None
    try:
        docs = load_documents(sources, warn)
    except RagError as exc:
        if built_at is None:
            raise
        log(f"error: {exc}; serving the index as built at {built_at} until that is fixed")
        return None
    return None if current(digests_of(docs)) else docs  # the folder may hold files the load skips


def open_backend(index: Path, encoder: Any) -> Backend:
    """The current generation, ready to serve, with the source texts it was built from."""
    def backend(opened: Index) -> Backend:
        return Backend(Searcher(opened, encoder), dict(opened.texts), SourceWatch(opened.manifest))

    return open_with(index, backend)


def ensure_at(sources: Path, where: Location, log: Callable[[str], None],
              checked: Callable[[], object] | None = None) -> None:
    """`ensure_index` for a Milvus store: build or update the collection from the sources
    (keeping its model and chunking); a bad source keeps the collection as it was. `checked`
    is called as `ensure_index` calls it."""
    from rag.index import same_sources
    from rag.locations import build_at, encoder_for_build, settings_at

    model, config, manifest = settings_at(where)

    def current(digests: Mapping[str, str]) -> bool:
        return manifest is not None and same_sources(manifest, digests)

    docs = _changed_documents(sources, current, manifest.built_at if manifest is not None else None, log)
    if checked is not None:
        checked()
    if docs is None:
        return
    report = build_at(where, sources, encoder_for_build(where, model, None), docs, config, progress=True,
                      log=lambda m: log(f"building the {where.describe()} ({m})"))
    if not report.up_to_date:
        log(f"indexed {report.documents} sources into {report.passages} passages in {report.seconds:.1f} s")


def open_backend_at(where: Location, encoder: Any) -> Backend:
    """The current generation of any store, ready to serve."""
    if where.milvus is None:
        return open_backend(where.folder, encoder)
    from rag.locations import open_searcher

    searcher = open_searcher(where, encoder=encoder)
    return Backend(searcher, searcher.index.texts, SourceWatch(searcher.index.manifest))


def current_name(index: Path) -> str | None:
    gen = current_generation(index)
    return gen.name if gen else None
