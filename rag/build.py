"""The build pipeline: seeds/ -> documents -> chunks -> vectors -> a new index generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .chunking import chunk_document
from .embedding import Encoder
from .errors import RagError
from .search import DEFAULT_THRESHOLDS, GENERIC_THRESHOLD
from .sources import load_documents
from .store import FORMAT_VERSION, read_manifest, write_index
from .types import Chunk, ChunkingConfig, Document, Manifest, Passage, SourceRecord

_VERSIONED = ("faiss-cpu", "bm25s", "sentence-transformers", "transformers", "torch", "numpy")


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI to print and benchmarks to read."""

    path: Path
    documents: int
    passages: int
    sentences: int
    seconds: float
    encode_seconds: float


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


def embed_chunks(
    encoder: Encoder, chunks: Sequence[Chunk], progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors and the stacked sentence vectors of all chunks, in chunk order."""
    texts = [c.embed_text for c in chunks]
    spans = [
        [(a - c.start + c.embed_offset, b - c.start + c.embed_offset) for a, b in c.sentences]
        for c in chunks
    ]
    vectors, sentence_vectors = encoder.encode_passages(texts, spans, progress=progress)
    stacked = (
        np.concatenate(sentence_vectors).astype(np.float32)
        if sentence_vectors
        else np.zeros((0, encoder.dimension), np.float32)
    )
    return vectors, stacked


def assign_ids(chunks: Sequence[Chunk], first_id: int) -> list[Passage]:
    """Passages with ids counted up from `first_id` and their sentence rows laid end to end."""
    passages, row = [], 0
    for offset, chunk in enumerate(chunks):
        passages.append(Passage.from_chunk(chunk, id=first_id + offset, sentence_row=row))
        row += len(chunk.sentences)
    return passages


def default_threshold(model: str) -> float:
    return DEFAULT_THRESHOLDS.get(model, GENERIC_THRESHOLD)


def build_index(
    sources: Path,
    index_root: Path,
    encoder: Encoder,
    config: ChunkingConfig | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    documents: Sequence[Document] | None = None,
) -> BuildReport:
    """Read, chunk, embed and write a complete new generation of the index."""
    started = time.perf_counter()
    config = config or ChunkingConfig()
    check_budget(encoder, config)
    docs = list(documents) if documents is not None else load_documents(sources, warn)
    next_id = _previous_next_id(index_root)
    per_doc = [chunk_document(doc, encoder.count_tokens, config) for doc in docs]
    chunks = [c for doc_chunks in per_doc for c in doc_chunks]
    encode_started = time.perf_counter()
    vectors, sentence_vectors = embed_chunks(encoder, chunks, progress)
    encode_seconds = time.perf_counter() - encode_started
    passages = assign_ids(chunks, next_id)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model=encoder.name,
        dimension=encoder.dimension,
        max_seq_length=encoder.max_seq_length,
        chunking=config,
        sources={
            doc.id: SourceRecord(sha256=doc.sha256, title=doc.title, passages=len(doc_chunks))
            for doc, doc_chunks in zip(docs, per_doc)
        },
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=0.0,
        versions=library_versions(),
        passages=len(passages),
        sentences=len(sentence_vectors),
        next_id=next_id + len(passages),
        faiss_index="IDMap2,Flat",
        abstain_threshold=default_threshold(encoder.name),
        abstain_calibrated=False,
        extra={"sources_dir": str(sources.resolve())},
    )
    manifest = _with_seconds(manifest, time.perf_counter() - started)
    path = write_index(index_root, manifest, passages, vectors, sentence_vectors)
    return BuildReport(
        path=path,
        documents=len(docs),
        passages=len(passages),
        sentences=len(sentence_vectors),
        seconds=time.perf_counter() - started,
        encode_seconds=encode_seconds,
    )


def _previous_next_id(index_root: Path) -> int:
    """Ids only go up: a rebuild continues the counter of the index it replaces."""
    try:
        return read_manifest(index_root).next_id
    except RagError:
        return 0


def _with_seconds(manifest: Manifest, seconds: float) -> Manifest:
    from dataclasses import replace

    return replace(manifest, build_seconds=round(seconds, 3))
