"""The build pipeline into Milvus: seeds/ -> documents -> passages -> vectors -> a Milvus generation.

The same stages as rag.build (chunking, the index's ONNX copy of the model, the manifest's
checks), with an update that touches only what changed: a changed or deleted source's rows
are removed by filter and its new passages inserted; unchanged sources stay where they are.
Passages of changed sources are encoded again (the folder store reuses vectors across edits;
here that would cost a read of the old rows for little gain). The model copy is kept in the
collection too, so any machine that opens it encodes questions with exactly the same copy.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.chunking import chunk_documents
from rag.encoding import Encoder
from rag.errors import GenerationGone, RagError
from rag.index.build import BuildReport
from rag.index.encoders import _onnx_copy, _passage_encoder, embed_chunks
from rag.index.layout import FORMAT_VERSION
from rag.index.locking import checkpoint
from rag.index.milvus.client import MilvusTarget, client_for
from rag.index.milvus.families import Family, drop_other_families, families_present, read_live
from rag.index.milvus.reader import MilvusIndex, replaced_means_gone
from rag.index.milvus.store import MilvusStore
from rag.index.rules import check_budget, full_rebuild_reason, library_versions, same_sources
from rag.models import default_model
from rag.sources import digests_of
from rag.types import AbstentionModel, ChunkingConfig, Document, Manifest, Passage, SourceRecord

ONNX_FILES = ("model.onnx", "tokenizer.json", "config.json")


def read_state(target: MilvusTarget) -> tuple[MilvusStore | None, int | None, Manifest | None]:
    """(the live family's store, its committed generation, that generation's manifest), all
    None when there is no index; a collection from a newer rag is refused."""
    live = read_live(client_for(target), target.collection)
    if live is None:
        return None, None, None
    family, gen = live
    store = MilvusStore(target, family)
    with replaced_means_gone(store):
        data = store.manifest_json(gen)
    version = data.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise RagError(f"the {store.target.describe()} was written by a newer version of rag (format {version}; "
                       f"this one reads {FORMAT_VERSION}); upgrade rag, or replace it with: rag index --full")
    try:
        return store, gen, Manifest.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RagError(f"the {store.target.describe()} is damaged (manifest: {exc}); rebuild it with: rag index --full") from None


def open_milvus(target: MilvusTarget, attempts: int = 3) -> MilvusIndex:
    """The committed generation, ready to search; a one-line error when there is none. A
    family dropped between reading the pointer and opening it (a full rebuild finishing) is
    followed to the new one."""
    for attempt in range(attempts):
        try:
            store, gen, manifest = read_state(target)
            if store is None or gen is None or manifest is None:
                raise RagError(f"no index in the {target.describe()}; build it with: "
                               f"rag index --store {target.spec} --collection {target.collection}")
            return MilvusIndex(store, gen, manifest)
        except GenerationGone:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def live_label(target: MilvusTarget) -> str | None:
    """The name of the live generation, `<collection>@<gen>` (the app reloads when it changes)."""
    live = read_live(client_for(target), target.collection)
    return None if live is None else f"{target.collection}@{live[1]}"


def onnx_sha(folder: Path) -> str:
    return hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()


def keep_model_copy(store: MilvusStore, folder: Path) -> str:
    """Store the generation's ONNX copy beside the data (once per distinct copy); its sha256."""
    sha = onnx_sha(folder)
    if store.get_blob_head(f"onnx/{sha}/config.json") is None:
        for name in ONNX_FILES:
            store.put_blob(f"onnx/{sha}/{name}", (folder / name).read_bytes())
    return sha


def question_encoder_for(index: MilvusIndex) -> Encoder:
    """The collection's own copy of the model (fetched once per machine into the copy cache),
    or the model itself when the collection has none."""
    from rag.encoding import OnnxEncoder, cache_root

    sha = index.manifest.extra.get("onnx_sha256")
    if not isinstance(sha, str):
        from rag.encoding import SentenceTransformerEncoder

        return SentenceTransformerEncoder(index.manifest.model)
    root = cache_root() or Path(tempfile.gettempdir()) / "rag-cache"
    folder = root / "milvus-onnx" / sha
    if not (folder / "config.json").is_file():
        tmp = folder.parent / f".tmp-{sha}-{time.time_ns()}"
        tmp.mkdir(parents=True, exist_ok=True)
        for name in ONNX_FILES:
            data = index.store.get_blob(f"onnx/{sha}/{name}")
            if data is None:
                raise RagError(f"the {index.store.target.describe()} is damaged (its copy of the model is missing); "
                               "rebuild it with: rag index --full")
            (tmp / name).write_bytes(data)
        if onnx_sha(tmp) != sha:
            raise RagError(f"the {index.store.target.describe()} is damaged (its copy of the model does not match its "
                           "checksum); rebuild it with: rag index --full")
        try:
            tmp.rename(folder)
        except OSError:  # another process fetched it first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return OnnxEncoder(folder, index.manifest.model)


def build_milvus(
    target: MilvusTarget,
    sources: Path,
    encoder: Encoder,
    docs: Sequence[Document],
    config: ChunkingConfig | None = None,
    full: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    precision: str | None = None,
    from_files: bool = True,
) -> BuildReport:
    """Bring the Milvus index up to date with `docs`, as a new generation."""
    from rag.encoding import DEFAULT_PRECISION, PRECISIONS

    started = time.perf_counter()
    config = config or ChunkingConfig()
    check_budget(encoder, config)
    try:
        live_store, gen, manifest = read_state(target)
    except GenerationGone:
        raise
    except RagError:
        if not full:
            raise
        live_store, gen, manifest = None, None, None  # damaged or newer: --full replaces it
    precision = precision or (manifest.precision if manifest is not None else DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        raise RagError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    reason = "--full was given" if full and manifest is not None else full_rebuild_reason(manifest, encoder, config, precision)
    client = client_for(target)
    # Generation numbers only go up, past any family a killed build left under a higher one.
    new_gen = max([gen or 0, *(n for n in families_present(client, target.collection) if n is not None)]) + 1
    if live_store is not None and gen is not None and reason is None:  # an update writes into the live family
        store = live_store
        drop_other_families(client, store.family)  # what killed full builds left
        store.clean(gen, manifest)  # what a killed update left
    else:  # a full build fills a new family beside the live one, which readers keep until the switch
        store = MilvusStore(target, Family(target.collection, new_gen))
        keep = live_store.family if live_store is not None else store.family
        drop_other_families(client, keep)
    if gen is not None and reason is None:
        assert manifest is not None
        if same_sources(manifest, digests_of(docs)):
            return BuildReport(path=Path(target.uri), documents=len(docs), passages=manifest.passages,
                               sentences=manifest.sentences, seconds=time.perf_counter() - started, encode_seconds=0.0,
                               unchanged=len(docs), reused=manifest.passages, up_to_date=True)
    if reason and log:
        beside = "; readers keep the live index until the new one is complete" if live_store is not None else ""
        log(f"full rebuild: {reason}{beside}")
    old = manifest.sources if manifest is not None and reason is None else {}
    unchanged = {d.id for d in docs if d.id in old and old[d.id].sha256 == d.sha256}
    changed = {d.id for d in docs if d.id in old and d.id not in unchanged}
    added = {d.id for d in docs if d.id not in old}
    removed = set(old) - {d.id for d in docs}
    if old and log:
        log(f"updating: {len(added)} new, {len(changed)} changed, {len(removed)} removed source file(s)")
    next_id = manifest.next_id if manifest is not None else 0

    with tempfile.TemporaryDirectory() as scratch:
        onnx = _onnx_copy(encoder, None, None, Path(scratch) / "onnx", precision)
        passage_encoder = _passage_encoder(encoder, onnx[0])
        chunks = [c for cs in chunk_documents([d for d in docs if d.id not in unchanged], encoder.count_tokens, config) for c in cs]
        per_doc = {d.id: (old[d.id].passages if d.id in unchanged else 0) for d in docs}
        for c in chunks:
            per_doc[c.source] += 1
        checkpoint("chunked")
        encode_started = time.perf_counter()
        vectors, sentence_vectors = embed_chunks(passage_encoder, chunks, progress)
        encode_seconds = time.perf_counter() - encode_started
        checkpoint("encoded")
        if reason is not None:
            store.create(encoder.dimension)
            checkpoint("created")
        sha = keep_model_copy(store, onnx[0]) if onnx[0] is not None else None

    passages = []
    for chunk in chunks:
        passages.append(Passage.from_chunk(chunk, id=next_id, sentence_row=0))
        next_id += 1
    shas = {d.id: d.sha256 for d in docs}
    store.insert(new_gen, passages, shas, vectors, sentence_vectors)
    checkpoint("writing")
    gone_sentences = 0
    if manifest is not None and reason is None:
        for row in store.passages_of(changed | removed, gen or 0):
            gone_sentences += len(row["sentences"])
    sentences = (manifest.sentences if manifest is not None and reason is None else 0) - gone_sentences \
        + sum(len(p.sentences) for p in passages)
    abstention: AbstentionModel = default_model(encoder.name)
    extra: dict[str, Any] = {}
    if manifest is not None and reason is None and manifest.abstention.calibrated:
        abstention = manifest.abstention
        extra = {k: v for k, v in manifest.extra.items() if k == "calibration"}
    new_manifest = Manifest(
        format_version=FORMAT_VERSION, model=encoder.name, dimension=encoder.dimension,
        max_seq_length=encoder.max_seq_length, chunking=config,
        sources={d.id: SourceRecord(sha256=d.sha256, title=d.title, passages=per_doc[d.id]) for d in docs},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), build_seconds=round(time.perf_counter() - started, 3),
        versions=library_versions(), passages=sum(per_doc.values()), sentences=sentences, next_id=next_id,
        faiss_index="milvus:" + ("FLAT" if target.lite else "HNSW"), abstention=abstention,
        precision=passage_encoder.precision,
        extra={**extra, "sources_dir": str(sources.resolve()), "from_files": from_files,
               **({"onnx_sha256": sha} if sha else {}), **({"onnx_unavailable": onnx[2]} if onnx[2] else {})},
        onnx=onnx[1],
    )
    store.commit(new_gen, new_manifest, {d.id: d.text for d in docs})
    drop_other_families(store.client, store.family, lambda: checkpoint("cleaning"))  # the family a full build replaced
    store.clean(new_gen, new_manifest, lambda: checkpoint("cleaning"))
    return BuildReport(
        path=Path(target.uri), documents=len(docs), passages=new_manifest.passages, sentences=sentences,
        seconds=time.perf_counter() - started, encode_seconds=encode_seconds, added=len(added), changed=len(changed),
        removed=len(removed), unchanged=len(unchanged), embedded=len(passages),
        reused=new_manifest.passages - len(passages), full_reason=reason,
    )
