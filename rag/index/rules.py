"""When an index can be kept, updated or must be rebuilt: pure checks on manifests and digests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from rag import __version__
from rag.encoding import Encoder
from rag.errors import RagError
from rag.index.layout import IndexState, inspect_index
from rag.index.locking import index_lock, is_locked
from rag.index.writing import remove_old_generations
from rag.types import Chunk, ChunkingConfig, Manifest

_VERSIONED = ("faiss-cpu", "bm25s", "sentence-transformers", "transformers", "torch", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"rag": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def check_budget(encoder: Encoder, config: ChunkingConfig) -> None:
    """Passages plus their context line must fit the model's window, with [CLS] and [SEP]."""
    need = config.max_tokens + config.max_context_tokens + 2
    if need > encoder.max_seq_length:
        raise RagError(
            f"max_tokens ({config.max_tokens}) + max_context_tokens ({config.max_context_tokens}) "
            f"+ 2 exceeds the model's {encoder.max_seq_length} word-pieces; lower max_tokens"
        )


def content_key(chunk: Chunk) -> str:
    """Identifies what the encoder saw for a passage: equal keys give equal vectors."""
    relative = [(a - chunk.start, b - chunk.start) for a, b in chunk.sentences]
    return hashlib.sha256(json.dumps([chunk.context, chunk.text, relative]).encode("utf-8")).hexdigest()


def full_rebuild_reason(previous: Manifest | None, encoder: Encoder, config: ChunkingConfig, precision: str) -> str | None:
    """Why the previous generation cannot be updated in place, or None when it can."""
    if previous is None:
        return "there is no index yet"
    if previous.model != encoder.name or previous.dimension != encoder.dimension:
        return f"the model changed from {previous.model} to {encoder.name}"
    if previous.chunking != config:
        return f"the chunking settings changed from {previous.chunking.to_dict()} to {config.to_dict()}"
    if previous.precision != precision:
        return f"the precision changed from {previous.precision} to {precision}"
    if previous.onnx:
        from rag.encoding import OnnxEncoder, current_recipe, recipe_of

        old = recipe_of(previous.onnx)  # the encoder's copy, or the one the build will export
        new = recipe_of(encoder.config) if isinstance(encoder, OnnxEncoder) else current_recipe(precision)
        if old != new:
            return f"the model's {precision} copy is made by recipe {new} now, the index's by recipe {old}"
    return None


def existing_settings(state: IndexState) -> tuple[str | None, ChunkingConfig]:
    """The model and chunking an existing index was built with (read leniently from an older
    format), so that updates and rebuilds keep them; (None, defaults) when there is none."""
    if state.manifest is not None:
        return state.manifest.model, state.manifest.chunking
    if state.settings is not None:
        try:
            return state.settings["model"], ChunkingConfig.from_dict(state.settings["chunking"])
        except (ValueError, TypeError):
            return state.settings["model"], ChunkingConfig()
    return None, ChunkingConfig()


def up_to_date(index_root: Path, model: str, config: ChunkingConfig, digests: Mapping[str, str]) -> Manifest | None:
    """The current manifest when it was built from exactly the sources of these `digests`
    (sha256 by source id) with this model and chunking, else None. Decided from the manifest
    alone, so a start-up with nothing to do never loads the model; reading needs no lock, and
    leftovers of killed builds are cleaned up only when no build is running."""
    state = inspect_index(index_root)
    manifest = state.manifest
    if manifest is None or manifest.model != model or manifest.chunking != config or not same_sources(manifest, digests):
        return None
    if state.generation is not None and not is_locked(index_root):
        try:
            with index_lock(index_root):
                remove_old_generations(index_root, keep={state.generation.name})
        except RagError:
            pass  # a build started in between: it cleans up itself
    return manifest


def same_sources(manifest: Manifest, digests: Mapping[str, str]) -> bool:
    """Whether the manifest lists exactly these files (sha256 by source id), at these contents."""
    return dict(digests) == {k: v.sha256 for k, v in manifest.sources.items()}
