"""Where an index lives: the folder given by --index (the default) or a Milvus collection
(--store milvus://HOST:PORT or milvus:PATH.db, --collection NAME). The CLI, evaluation, the app
and the Python API open, build and watch an index only through these functions, so none of
them knows which store it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rag.errors import GenerationGone, RagError

if TYPE_CHECKING:
    from rag.answer import Searcher
    from rag.encoding import Encoder
    from rag.index import BuildReport, IndexReader
    from rag.index.milvus import MilvusTarget
    from rag.types import ChunkingConfig, Document, Manifest


R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    """An index folder, or a Milvus collection (then `folder` is unused)."""

    folder: Path
    milvus: MilvusTarget | None = None

    def describe(self) -> str:
        return self.milvus.describe() if self.milvus is not None else f"the index in '{self.folder}'"

    def __str__(self) -> str:
        return f"{self.milvus.uri}#{self.milvus.collection}" if self.milvus is not None else str(self.folder)


def location(index: Path | str = "index", store: str | None = None, collection: str = "rag") -> Location:
    """The location named by the --index / --store / --collection options."""
    if store:
        from rag.index.milvus import parse_store

        return Location(Path(index), parse_store(store, collection))
    if collection != "rag":
        raise RagError("--collection names a Milvus collection; add --store milvus://HOST:PORT or --store milvus:PATH.db")
    return Location(Path(index))


def read_manifest_at(where: Location) -> Manifest:
    """The current manifest, or one line saying to build."""
    if where.milvus is not None:
        from rag.index.milvus import open_milvus

        return open_milvus(where.milvus).manifest
    from rag.index import read_manifest

    return read_manifest(where.folder)


def check_model(manifest: Manifest, model: str | None) -> None:
    from rag.encoding import resolve_model

    if model is not None and resolve_model(model)[0] != manifest.model:
        raise RagError(
            f"the index was built with model '{manifest.model}', not '{model}'; "
            f"rebuild with: rag index --model {model}, or drop --model"
        )


def open_searcher(where: Location, model: str | None = None, encoder: Encoder | None = None) -> Searcher:
    """The current generation with the copy of the model its passages were encoded with."""
    from rag.answer import Searcher

    if where.milvus is not None:
        from rag.index.milvus import open_milvus, question_encoder_for

        index = open_milvus(where.milvus)
        check_model(index.manifest, model)
        return Searcher(index, encoder or question_encoder_for(index))
    from rag.encoding import question_encoder
    from rag.index import open_with, read_manifest

    check_model(read_manifest(where.folder), model)
    return open_with(where.folder, lambda index: Searcher(index, question_encoder(index.path, index.manifest.model, encoder)))


def open_reader(where: Location) -> IndexReader:
    if where.milvus is not None:
        from rag.index.milvus import open_milvus

        return open_milvus(where.milvus)
    from rag.index import open_index

    return open_index(where.folder)


def current_label(where: Location) -> str | None:
    """The name of the live generation (the app reloads when it changes)."""
    if where.milvus is not None:
        from rag.index.milvus import live_label

        return live_label(where.milvus)
    from rag.index import current_generation

    gen_path = current_generation(where.folder)
    return gen_path.name if gen_path else None


def settings_at(where: Location) -> tuple[str | None, ChunkingConfig, Manifest | None]:
    """The model and chunking an existing index keeps, and its manifest (None when new)."""
    from rag.types import ChunkingConfig

    if where.milvus is not None:
        from rag.index.milvus import read_state

        _, _, manifest = read_state(where.milvus)
        return (manifest.model, manifest.chunking, manifest) if manifest else (None, ChunkingConfig(), None)
    from rag.index import existing_settings, inspect_index

    state = inspect_index(where.folder)
    model, config = existing_settings(state)
    return model, config, state.manifest


def encoder_for_build(where: Location, model: str | None, precision: str | None) -> Encoder:
    """What a build encodes with (a kept ONNX copy when one is at hand, else the model)."""
    from rag.index import IndexState, build_encoder, inspect_index

    if where.milvus is not None:
        return build_encoder(IndexState(where.folder, None, None, "none"), model, precision)
    return build_encoder(inspect_index(where.folder), model, precision)


def build_at(where: Location, sources: Path, encoder: Encoder, docs: Sequence[Document], config: ChunkingConfig,
             full: bool = False, progress: bool = False, log: Callable[[str], None] | None = None,
             precision: str | None = None, from_files: bool = True) -> BuildReport:
    """Bring the index up to date with `docs` (one new generation, or nothing when up to date)."""
    if where.milvus is not None:
        from rag.index.milvus import build_milvus

        return build_milvus(where.milvus, sources, encoder, docs, config, full, progress, log, precision, from_files)
    from rag.index import build_index

    return build_index(sources, where.folder, encoder, config, progress=progress, documents=docs, full=full, log=log,
                       precision=precision, from_files=from_files)


def on_live(held: Callable[[], R], reopen: Callable[[], R], use: Callable[[R], T]) -> T:
    """`use` on the reader held; when a full rebuild dropped its generation meanwhile (a Milvus
    family, GenerationGone), once more on the live one: every answer comes from one generation."""
    try:
        return use(held())
    except GenerationGone:
        return use(reopen())
