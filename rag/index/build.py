"""The build pipeline: seeds/ -> documents -> chunks -> vectors -> a new index generation.

Builds are incremental: sources whose content hash matches the manifest keep their passages,
ids and vectors; changed and new sources are chunked again, and only passages whose content
was never embedded before are encoded. A different model or chunking setting, an unreadable
index, or `full=True` makes a full rebuild, and the report says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import chunk_documents
from rag.encoding import ONNX_DIR, Encoder
from rag.errors import RagError
from rag.index.dense import dense_kind
from rag.index.encoders import _onnx_copy, _passage_encoder, embed_chunks, previous_dense
from rag.index.layout import FORMAT_VERSION, IndexState, inspect_index
from rag.index.locking import checkpoint, index_lock
from rag.index.reading import Index, open_index
from rag.index.rules import (
    check_budget,
    content_key,
    full_rebuild_reason,
    library_versions,
    same_sources,
)
from rag.index.writing import remove_old_generations, scratch_folder, write_index
from rag.models import default_model
from rag.sources import digests_of, load_documents
from rag.types import (
    AbstentionModel,
    Chunk,
    ChunkingConfig,
    Document,
    Manifest,
    Passage,
    SourceRecord,
)


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI to print and benchmarks to read."""

    path: Path
    documents: int
    passages: int
    sentences: int
    seconds: float
    encode_seconds: float
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # passages encoded by this build
    reused: int = 0  # passages whose vectors came from the previous generation
    full_reason: str | None = None  # why everything was rebuilt, if it was
    up_to_date: bool = False  # nothing had changed, so no new generation was written


@dataclass(frozen=True)
class _Piece:
    """One passage of the new generation, before ids and sentence rows are final."""

    chunk: Chunk
    old_row: int | None  # its row in the previous generation, when its vectors are reused
    keep_id: int | None  # its previous id, when it is the same passage of the same source


def build_index(
    sources: Path,
    index_root: Path,
    encoder: Encoder,
    config: ChunkingConfig | None = None,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    documents: Sequence[Document] | None = None,
    full: bool = False,
    log: Callable[[str], None] | None = None,
    from_files: bool = True,
    precision: str | None = None,
) -> BuildReport:
    """Bring the index in `index_root` up to date with the sources, as a new generation.
    `from_files` says the documents are the files under `sources` (False for a benchmark
    corpus), so readers can check cited files against what was indexed. `precision` is the
    model copy's ("int8" or "fp32"; by default the index's own, else DEFAULT_PRECISION)."""
    from rag.encoding import DEFAULT_PRECISION, PRECISIONS, is_current_recipe

    started = time.perf_counter()
    config = config or ChunkingConfig()
    check_budget(encoder, config)
    docs = list(documents) if documents is not None else load_documents(sources, warn)
    with index_lock(index_root):
        state = inspect_index(index_root)
        precision = precision or (state.manifest.precision if state.manifest is not None else DEFAULT_PRECISION)
        if precision not in PRECISIONS:
            raise RagError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        manifest, reason = _manifest_and_reason(state, encoder, config, full, precision)
        if manifest is not None and reason is None and same_sources(manifest, digests_of(docs)):
            path = state.generation
            assert path is not None
            remove_old_generations(index_root, keep={path.name})  # what killed builds left
            return BuildReport(
                path=path,
                documents=len(docs),
                passages=manifest.passages,
                sentences=manifest.sentences,
                seconds=time.perf_counter() - started,
                encode_seconds=0.0,
                unchanged=len(docs),
                reused=manifest.passages,
                up_to_date=True,
            )
        previous = open_index(index_root) if reason is None else None  # damaged files: one line, nothing replaced
        if previous is not None:
            previous_dense(previous, index_root)  # read now: a damaged file is one line before any work
        if reason and log:
            log(f"full rebuild: {reason}")
        next_id = manifest.next_id if manifest is not None else int((state.settings or {}).get("next_id", 0))
        reusable = None  # the current ONNX copy, when it is a copy of the same model at this precision, by today's recipe
        if (not full and manifest is not None and manifest.model == encoder.name and manifest.onnx and state.generation
                and manifest.precision == precision and is_current_recipe(manifest.onnx, precision)):
            reusable = state.generation / ONNX_DIR
            reusable = reusable if reusable.is_dir() else None
        with scratch_folder(index_root) as scratch:
            onnx = _onnx_copy(encoder, reusable, manifest, scratch / ONNX_DIR, precision)
            report = _build(sources, index_root, encoder, config, docs, previous, next_id, progress, started, log, onnx,
                            from_files)
    return replace(report, full_reason=reason, seconds=time.perf_counter() - started)


def _manifest_and_reason(
    state: IndexState, encoder: Encoder, config: ChunkingConfig, full: bool, precision: str
) -> tuple[Manifest | None, str | None]:
    """The current manifest (when usable) and why a full rebuild is needed (None if not). An
    index written by a newer version, or damaged, is never replaced without --full."""
    if state.problem in ("newer", "damaged"):
        if not full:
            raise RagError(state.message)
        return None, f"--full was given (the index could not be used: {state.message.split(';')[0]})"
    if state.problem == "none":
        return None, "there is no index yet"
    if state.problem == "older":
        return None, "the index has an older format (" + state.message.split("; ")[0].split("has ")[-1] + ")"
    assert state.manifest is not None
    return state.manifest, "--full was given" if full else full_rebuild_reason(state.manifest, encoder, config, precision)


def _build(
    sources: Path,
    index_root: Path,
    encoder: Encoder,
    config: ChunkingConfig,
    docs: list[Document],
    previous: Index | None,
    next_id: int,
    progress: bool,
    started: float,
    log: Callable[[str], None] | None,
    onnx: tuple[Path | None, dict[str, Any] | None, str | None] = (None, None, None),
    from_files: bool = True,
) -> BuildReport:
    """A new generation, reusing the passages of `previous` (an incremental update) when given;
    new ids continue from `next_id`."""
    incremental = previous is not None
    old = previous.manifest.sources if previous is not None else {}
    unchanged = {d.id for d in docs if incremental and d.id in old and old[d.id].sha256 == d.sha256}
    changed = {d.id for d in docs if d.id in old and d.id not in unchanged} if incremental else set()
    added = {d.id for d in docs if d.id not in old} if incremental else {d.id for d in docs}
    current = {d.id for d in docs}
    removed = set(old) - current if incremental else set()
    if incremental and log:
        log(f"updating: {len(added)} new, {len(changed)} changed, {len(removed)} removed source file(s)")

    pieces: list[_Piece] = []
    by_key: dict[str, int] = {}
    if incremental and previous is not None:
        for row, p in enumerate(previous.passages):
            if p.source in unchanged:
                pieces.append(_Piece(p, row, p.id))
            else:
                by_key.setdefault(content_key(p), row)
    fresh: list[Chunk] = []
    per_doc: dict[str, int] = {}
    to_cut = [doc for doc in docs if not (doc.id in unchanged and previous is not None)]
    cut = dict(zip((doc.id for doc in to_cut), chunk_documents(to_cut, encoder.count_tokens, config)))
    for doc in docs:
        if doc.id not in cut:
            per_doc[doc.id] = old[doc.id].passages
            continue
        chunks = cut[doc.id]
        per_doc[doc.id] = len(chunks)
        for chunk in chunks:
            match = by_key.get(content_key(chunk))
            if match is None or previous is None:
                fresh.append(chunk)
                pieces.append(_Piece(chunk, None, None))
            else:
                earlier = previous.passages[match]
                pieces.append(_Piece(chunk, match, earlier.id if earlier.source == chunk.source else None))
    checkpoint("chunked")

    encode_started = time.perf_counter()
    passage_encoder = _passage_encoder(encoder, onnx[0])
    new_vectors, new_sentences = embed_chunks(passage_encoder, fresh, progress)
    encode_seconds = time.perf_counter() - encode_started
    checkpoint("encoded")

    used: set[int] = set()
    passages: list[Passage] = []
    vectors = np.zeros((len(pieces), encoder.dimension), dtype=np.float32)
    sentence_blocks: list[np.ndarray] = []
    fresh_index = 0
    sentence_row = 0
    for i, piece in enumerate(pieces):
        if piece.old_row is None:
            vectors[i] = new_vectors[fresh_index]
            sentence_blocks.append(new_sentences[fresh_index])
            fresh_index += 1
        else:
            assert previous is not None
            old_passage = previous.passages[piece.old_row]
            vectors[i] = previous.vectors[piece.old_row]
            first = old_passage.sentence_row
            sentence_blocks.append(np.asarray(previous.sentence_vectors[first : first + len(old_passage.sentences)]))
        if piece.keep_id is not None and piece.keep_id not in used:
            pid = piece.keep_id
        else:
            pid, next_id = next_id, next_id + 1
        used.add(pid)
        passages.append(Passage.from_chunk(piece.chunk, id=pid, sentence_row=sentence_row))
        sentence_row += len(piece.chunk.sentences)
    sentence_vectors = (
        np.concatenate(sentence_blocks).astype(np.float32) if sentence_blocks else np.zeros((0, encoder.dimension), np.float32)
    )

    dense = None
    if incremental and previous is not None:  # txtai-style: drop the gone ids, add the new ones
        old_ids = {int(i) for i in previous.ids}
        gone = np.array(sorted(old_ids - used), dtype=np.int64)
        new_rows = [i for i, p in enumerate(passages) if p.id not in old_ids]
        dense = None
        if previous.manifest.faiss_index == dense_kind(len(passages)):
            dense = previous_dense(previous, index_root)
    if dense is not None:
        if len(gone):
            dense.remove_ids(gone)
        if new_rows:
            dense.add_with_ids(vectors[new_rows], np.array([passages[i].id for i in new_rows], dtype=np.int64))

    abstention: AbstentionModel = default_model(encoder.name)
    extra: dict[str, Any] = {}
    if incremental and previous is not None and previous.manifest.abstention.calibrated:
        abstention = previous.manifest.abstention  # a calibration stays valid for the same model
        extra = {k: v for k, v in previous.manifest.extra.items() if k == "calibration"}
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model=encoder.name,
        dimension=encoder.dimension,
        max_seq_length=encoder.max_seq_length,
        chunking=config,
        sources={doc.id: SourceRecord(sha256=doc.sha256, title=doc.title, passages=per_doc[doc.id]) for doc in docs},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(time.perf_counter() - started, 3),
        versions=library_versions(),
        passages=len(passages),
        sentences=len(sentence_vectors),
        next_id=next_id,
        faiss_index=dense_kind(len(passages)),
        abstention=abstention,
        precision=passage_encoder.precision,
        extra={**extra, "sources_dir": str(sources.resolve()), "from_files": from_files,
               **({"onnx_unavailable": onnx[2]} if onnx[2] else {})},
        onnx=onnx[1],
    )
    path = write_index(
        index_root, manifest, passages, vectors, sentence_vectors, {d.id: d.text for d in docs}, dense, onnx[0]
    )
    return BuildReport(
        path=path,
        documents=len(docs),
        passages=len(passages),
        sentences=len(sentence_vectors),
        seconds=time.perf_counter() - started,
        encode_seconds=encode_seconds,
        added=len(added),
        changed=len(changed),
        removed=len(removed),
        unchanged=len(unchanged),
        embedded=len(fresh),
        reused=len(pieces) - len(fresh),
    )
