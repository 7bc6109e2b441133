"""The build pipeline: seeds/ -> documents -> chunks -> vectors -> a new index generation.

Builds are incremental: sources whose content hash matches the manifest keep their passages,
ids and vectors; changed and new sources are chunked again, and only passages whose content
was never embedded before are encoded. A different model or chunking setting, an unreadable
index, or `full=True` makes a full rebuild, and the report says why.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunking import chunk_documents
from .embedding import Encoder
from .errors import RagError
from .abstention import AbstentionModel, default_model
from .sources import digests_of, load_documents
from .store import (
    FORMAT_VERSION,
    ONNX_DIR,
    Index,
    IndexState,
    checkpoint,
    dense_kind,
    index_lock,
    inspect_index,
    is_locked,
    open_index,
    remove_old_generations,
    scratch_folder,
    write_index,
)
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
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0  # passages encoded by this build
    reused: int = 0  # passages whose vectors came from the previous generation
    full_reason: str | None = None  # why everything was rebuilt, if it was
    up_to_date: bool = False  # nothing had changed, so no new generation was written


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
        from .onnx_encoder import OnnxEncoder, current_recipe, recipe_of

        old = recipe_of(previous.onnx)  # the encoder's copy, or the one the build will export
        new = recipe_of(encoder.config) if isinstance(encoder, OnnxEncoder) else current_recipe(precision)
        if old != new:
            return f"the model's {precision} copy is made by recipe {new} now, the index's by recipe {old}"
    return None


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
    from .onnx_encoder import DEFAULT_PRECISION, PRECISIONS, is_current_recipe

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


def previous_dense(previous: Index, index_root: Path) -> Any:
    """The FAISS index an update extends, or one line saying the file is damaged."""
    try:
        return previous.dense.faiss()
    except RuntimeError:  # FAISS's own error for a damaged file
        raise RagError(f"the index in '{index_root}' is damaged (dense.faiss is unreadable); rebuild it with: "
                       "rag index --full") from None


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


def _onnx_copy(
    encoder: Encoder, reusable: Path | None, manifest: Manifest | None, folder: Path, precision: str
) -> tuple[Path | None, dict[str, Any] | None, str | None]:
    """(folder, its config, why there is none) for the new generation's ONNX copy of the model
    at `precision`: the current one when it is a copy of the same model, else the machine's
    kept copy, else a fresh export (then kept)."""
    from .copies import cached_copy, keep_copy
    from .onnx_encoder import ExportUnavailable, OnnxEncoder

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
    from .onnx_encoder import OnnxEncoder

    if onnx is None or (isinstance(encoder, OnnxEncoder) and encoder.folder == onnx):
        return encoder
    return OnnxEncoder(onnx, encoder.name)


def build_encoder(state: IndexState, model: str | None, precision: str | None,
                  load: Callable[[str | None], Encoder] | None = None) -> Encoder:
    """What a build encodes with: a verified ONNX copy of `model` at `precision` when one is at
    hand (the index's own when today's recipe made it, else the machine's kept copy), so that
    no PyTorch is imported; else the model itself (`load`, by default sentence-transformers),
    and the build exports."""
    from .copies import cached_copy
    from .embedding import SentenceTransformerEncoder, resolve_model
    from .onnx_encoder import DEFAULT_PRECISION, is_current_recipe, open_onnx_encoder

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
        from .onnx_encoder import OnnxEncoder

        try:
            return OnnxEncoder(kept, name)
        except Exception:  # noqa: BLE001  (a broken kept copy: export afresh)
            pass
    return (load or SentenceTransformerEncoder)(model)


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
