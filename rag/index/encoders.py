"""The encoder a build uses (the verified ONNX copy, made or reused, else the model), and the
chunks' passage and sentence vectors from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoding import Encoder
from rag.errors import RagError
from rag.index.layout import IndexState
from rag.index.reading import Index
from rag.types import Chunk, Manifest


def embed_chunks(
    encoder: Encoder, chunks: Sequence[Chunk], progress: bool = False
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passage vectors and, per chunk, its sentence vectors."""
    if not chunks:
        return np.zeros((0, encoder.dimension), np.float32), []
    texts = [c.embed_text for c in chunks]
    spans = [
        [(a - c.start + c.embed_offset, b - c.start + c.embed_offset) for a, b in c.sentences]
        for c in chunks
    ]
    return encoder.encode_passages(texts, spans, progress=progress)


def previous_dense(previous: Index, index_root: Path) -> Any:
    """The FAISS index an update extends, or one line saying the file is damaged."""
    try:
        return previous.dense.faiss()
    except RuntimeError:  # FAISS's own error for a damaged file
        raise RagError(f"the index in '{index_root}' is damaged (dense.faiss is unreadable); rebuild it with: "
                       "rag index --full") from None


def _onnx_copy(
    encoder: Encoder, reusable: Path | None, manifest: Manifest | None, folder: Path, precision: str
) -> tuple[Path | None, dict[str, Any] | None, str | None]:
    """(folder, its config, why there is none) for the new generation's ONNX copy of the model
    at `precision`: the current one when it is a copy of the same model, else the machine's
    kept copy, else a fresh export (then kept)."""
    from rag.encoding import ExportUnavailable, OnnxEncoder, cached_copy, keep_copy

    if reusable is not None and manifest is not None:
        return reusable, manifest.onnx, None
    if isinstance(encoder, OnnxEncoder) and encoder.precision == precision:
        return encoder.folder, encoder.config, None  # already a verified copy (the machine's, or an index's)
    kept = cached_copy(encoder.name, precision)
    if kept is not None:
        return kept, json.loads((kept / "config.json").read_text("utf-8")), None
    export = getattr(encoder, "export_onnx", None)
    if export is None:
        return None, None, "this encoder cannot be exported"
    try:
        config = export(folder, precision)
    except ExportUnavailable as exc:
        return None, None, str(exc)
    keep_copy(folder, encoder.name, precision)
    return folder, config, None


def _passage_encoder(encoder: Encoder, onnx: Path | None) -> Encoder:
    """The generation's ONNX copy when there is one (the encoder itself when it is that copy):
    what questions will be encoded with, and faster than torch on a CPU."""
    from rag.encoding import OnnxEncoder

    if onnx is None or (isinstance(encoder, OnnxEncoder) and encoder.folder == onnx):
        return encoder
    return OnnxEncoder(onnx, encoder.name)


def build_encoder(state: IndexState, model: str | None, precision: str | None,
                  load: Callable[[str | None], Encoder] | None = None) -> Encoder:
    """What a build encodes with: a verified ONNX copy of `model` at `precision` when one is at
    hand (the index's own when today's recipe made it, else the machine's kept copy), so that
    no PyTorch is imported; else the model itself (`load`, by default sentence-transformers),
    and the build exports."""
    from rag.encoding import (
        DEFAULT_PRECISION,
        SentenceTransformerEncoder,
        cached_copy,
        is_current_recipe,
        open_onnx_encoder,
        resolve_model,
    )

    name = resolve_model(model)[0]
    precision = precision or (state.manifest.precision if state.manifest is not None else DEFAULT_PRECISION)
    existing = state.manifest
    if state.generation is not None and existing is not None and existing.onnx and existing.model == name \
            and existing.precision == precision and is_current_recipe(existing.onnx, precision):
        copy = open_onnx_encoder(state.generation, name)
        if copy is not None:
            return copy
    kept = cached_copy(name, precision)
    if kept is not None:
        from rag.encoding import OnnxEncoder

        try:
            return OnnxEncoder(kept, name)
        except Exception:  # noqa: BLE001  (a broken kept copy: export afresh)
            pass
    return (load or SentenceTransformerEncoder)(model)
