"""`rag eval --beir`: build (and cache) an index of a BEIR corpus, and score it with its qrels."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.answer import Answer, Hit
from rag.encoding import Encoder
from rag.errors import RagError
from rag.evaluation.metrics import document_run
from rag.evaluation.questions import BeirSet, Question, load_beir
from rag.evaluation.runner import (
    EvalOptions,
    EvalReport,
    _fusion_json,
    calibrate_index,
    evaluate,
    labelled,
)
from rag.index import FORMAT_VERSION, Index, IndexReader, open_index, read_manifest
from rag.index.milvus import MilvusTarget
from rag.models import model_for
from rag.types import ChunkingConfig


def beir_cache_dir(cache: Path, corpus_sha256: str, model: str, chunking: ChunkingConfig, precision: str) -> Path:
    """A folder per corpus and settings, so an unchanged corpus reuses its index: question sets
    over the same corpus (a split of a benchmark) share it, with any calibration stored in it."""
    from rag.encoding import recipe_key

    r = cache_record(corpus_sha256, model, chunking, precision)  # the folder records what its name hashes
    key = json.dumps([r["corpus_sha256"], r["model"], r["chunking"], r["format"], r["precision"], *recipe_key(precision)],
                     sort_keys=True)
    return cache / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


CACHE_RECORD = "cache.json"  # in each cached evaluation index: what its key was made of


def cache_record(corpus_sha256: str, model: str, chunking: ChunkingConfig, precision: str) -> dict[str, Any]:
    """What a cached evaluation index was built from and by (`beir_cache_dir` hashes the same)."""
    from rag.encoding import current_recipe

    return {"corpus_sha256": corpus_sha256, "model": model, "chunking": chunking.to_dict(), "precision": precision,
            "format": FORMAT_VERSION, "recipe": current_recipe(precision)}


def prune_superseded(cache: Path, record: dict[str, Any], log: Callable[[str], None]) -> None:
    """Remove the cached evaluation indexes of the same corpus, model, chunking and precision
    that an older index format or model-copy recipe made: today's code never reads them again,
    and each holds a whole index. Folders without a record (or with a newer one, from a newer
    checkout sharing the cache) are left alone."""
    import shutil

    same = ("corpus_sha256", "model", "chunking", "precision")
    for folder in sorted(cache.glob("corpus-*")):
        try:
            other = json.loads((folder / CACHE_RECORD).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(other, dict) or any(other.get(k) != record[k] for k in same):
            continue
        made = (other.get("format"), other.get("recipe"))
        if not all(isinstance(v, int) for v in made) or made == (record["format"], record["recipe"]):
            continue
        if made[0] <= record["format"] and made[1] <= record["recipe"]:
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
            shutil.rmtree(folder, ignore_errors=True)
            log(f"removed {folder} ({size:.0f} MB): the same corpus indexed by format {made[0]}, "
                f"recipe {made[1]}; today's are {record['format']} and {record['recipe']}")


def beir_index(folder: Path, data: BeirSet, cache: Path, log: Callable[[str], None], model: str | None = None,
               precision: str | None = None, encoder: Encoder | None = None) -> tuple[Path, Encoder]:
    """The cached index of a BEIR corpus, built on first use (one document per corpus entry,
    its title as the context of each passage), and what encodes its questions (its own copy
    of the model). `encoder`, when given, builds it instead of `model`."""
    from rag.encoding import DEFAULT_PRECISION, question_encoder, resolve_model
    from rag.index import build_encoder, build_index, inspect_index
    from rag.sources import plain_document

    precision = precision or DEFAULT_PRECISION
    name = encoder.name if encoder is not None else resolve_model(model)[0]
    index_dir = beir_cache_dir(cache, data.corpus_sha256, name, ChunkingConfig(), precision)
    state = inspect_index(index_dir)
    if state.manifest is not None:
        log(f"reusing the index of {data.name} in {index_dir}")
    else:
        builder = encoder or build_encoder(state, model, precision)
        log(f"indexing {len(data.corpus)} passages of {data.name} into {index_dir} (once)")
        docs = [d for d in (plain_document(i, text, title) for i, title, text in data.corpus) if d is not None]
        report = build_index(folder, index_dir, builder, progress=True, documents=docs, from_files=False, precision=precision)
        log(f"indexed into {report.passages} passages in {report.seconds:.0f} s")
        encoder = encoder or builder
    record = cache_record(data.corpus_sha256, name, ChunkingConfig(), precision)
    if not (index_dir / CACHE_RECORD).is_file():
        (index_dir / CACHE_RECORD).write_text(json.dumps(record), encoding="utf-8")
    prune_superseded(cache, record, log)
    manifest = read_manifest(index_dir)
    generation = inspect_index(index_dir).generation
    assert generation is not None
    return index_dir, question_encoder(generation, manifest.model, encoder)


def beir_milvus(folder: Path, data: BeirSet, target: MilvusTarget, log: Callable[[str], None], model: str | None,
                precision: str | None) -> tuple[IndexReader, Encoder]:
    """A BEIR corpus in a Milvus collection (built or updated to match it), and its encoder."""
    from rag.index.milvus import open_milvus, question_encoder_for
    from rag.locations import Location, build_at, encoder_for_build, settings_at
    from rag.sources import plain_document

    where = Location(folder, target)
    docs = [d for d in (plain_document(i, text, title) for i, title, text in data.corpus) if d is not None]
    kept, config, _ = settings_at(where)
    builder = encoder_for_build(where, model or kept, precision)
    report = build_at(where, folder, builder, docs, config, progress=True, log=log, precision=precision, from_files=False)
    log(f"{data.name} in the {target.describe()}: {report.passages} passages"
        + ("" if report.up_to_date else f", built in {report.seconds:.0f} s"))
    index = open_milvus(target)
    return index, question_encoder_for(index)


def beir_group(data: BeirSet, index: IndexReader) -> Callable[[Question, Answer], str]:
    """A BEIR question's article: the title of its relevant document, else of its best hit."""
    def group_of(q: Question, a: Answer) -> str:
        if q.group:
            return q.group
        gold = next(iter(data.qrels.get(q.id, {})), None)
        return index.title(gold) if gold is not None else (index.title(a.hits[0].source) if a.hits else "")

    return group_of


def eval_beir(folder: Path, cache: Path, options: EvalOptions, log: Callable[[str], None], model: str | None = None,
              precision: str | None = None, encoder: Encoder | None = None, target: MilvusTarget | None = None) -> EvalReport:
    """A BEIR folder: index its corpus in the cache (once; or in the Milvus collection `target`,
    brought up to date with the corpus), rank documents by best passage."""
    data = load_beir(folder)
    if not data.questions:
        raise RagError(f"{folder}/queries.jsonl has no query with qrels or an \"answerable\" field; nothing to evaluate")
    index: IndexReader
    if target is not None:
        index, encoder = beir_milvus(folder, data, target, log, model, precision)
        index_dir: Path | str = f"{target.uri}#{target.collection}"
    else:
        index_dir, encoder = beir_index(folder, data, cache, log, model, precision, encoder)
        index = open_index(index_dir)
    depth = min(4 * options.k, 100)

    def judge(qs: Sequence[Question], answers: Sequence[Answer]) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
        return data.qrels, document_run(answers, qs, options.k)

    results, encode_ms, answers, correct = evaluate(index, encoder, data.questions, options, judge, depth)
    threshold = options.threshold if options.threshold is not None else model_for(index.manifest.abstention, index.manifest.model).threshold
    calibration = None
    if options.calibrate:
        def in_qrels(q: Question, hit: Hit) -> bool:
            return hit.source in data.qrels.get(q.id, {})

        assert isinstance(index, Index) and isinstance(index_dir, Path), "calibration needs a folder index"
        calibration = calibrate_index(index_dir, index, labelled(data.questions, answers, beir_group(data, index), in_qrels),
                                      data.name, options.answer_rate)
        threshold = calibration["threshold"]
    return EvalReport(
        name=data.name,
        questions=len(data.questions),
        answerable=sum(q.answerable for q in data.questions),
        k=options.k,
        index=str(index_dir),
        passages=len(index),
        relevance="qrels at document level; a document ranks where its best passage does",
        encode_ms=encode_ms,
        threshold=threshold,
        results=results,
        fusion=_fusion_json(options.fusion),
        calibration=calibration,
    )
