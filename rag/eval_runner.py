"""`rag eval`: run a question set through every requested mode and report, side by side.

Questions are encoded once, in the same chunks `rag ask --questions` uses, and each mode ranks
from the same vectors, so the figures agree with a count made from `rag ask --json` output.
Abstention is judged on every mode's support scores; `--calibrate` fits the abstention model
on the set (leaving each article out in turn to report out-of-sample rates) and stores it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .abstention import model_for
from .calibration import Labelled, choose_threshold, cross_validate, fit_model, question_support, rates, risk_coverage
from .embedding import Encoder
from .errors import RagError
from .evaluation import (
    METRICS,
    BeirSet,
    Question,
    abstention,
    answer_hits,
    answer_passages,
    by_source_figures,
    contains_answer,
    containment_judgements,
    document_run,
    failures,
    ir_metrics,
    load_beir,
    load_questions,
    percentile,
    source_hits,
)
from .fusion import MODES, FusionConfig
from .search import Searcher
from .locations import Location
from .milvus_store import MilvusTarget
from .reader import IndexReader
from .store import FORMAT_VERSION, Index, open_index, read_manifest, replace_manifest
from .types import Answer, ChunkingConfig, Hit

Judge = Callable[[Sequence[Question], Sequence[Answer]], tuple[dict[str, dict[str, int]], dict[str, list[str]]]]
MIN_PER_CLASS_TO_REFIT = 50  # fewer labelled questions of either kind: only the threshold is fitted


@dataclass(frozen=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]
    curve: dict[int, float]  # hit@k for k = 1..10
    extra: dict[str, float]  # answer@k, source@k where the set allows
    latency_ms: dict[str, float]
    abstention: dict[str, float | int]
    failures: list[dict[str, Any]]
    risk: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # (coverage, risk) as the threshold falls
    by_source: dict[str, float] = field(default_factory=dict)  # rag.evaluation.by_source_figures

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "metrics": {**{m: round(self.metrics[m], 4) for m in METRICS}, **{m: round(v, 4) for m, v in self.extra.items()}},
            "hit_at_k": {str(k): round(v, 4) for k, v in self.curve.items()},
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "abstention": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.abstention.items()},
            "by_source": {k: round(v, 4) for k, v in self.by_source.items()},
            "failures": self.failures,
        }


@dataclass(frozen=True)
class EvalReport:
    name: str
    questions: int
    answerable: int
    k: int
    index: str
    passages: int
    relevance: str
    encode_ms: float
    threshold: float
    results: list[ModeResult]
    fusion: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "questions": self.questions,
            "answerable": self.answerable,
            "k": self.k,
            "index": self.index,
            "passages": self.passages,
            "relevance": self.relevance,
            "encode_ms_per_question": round(self.encode_ms, 2),
            "abstain_threshold": round(self.threshold, 4),
            "fusion": self.fusion,
            "results": [r.to_json() for r in self.results],
        }
        if self.calibration is not None:
            data["calibration"] = self.calibration
        return data


@dataclass(frozen=True)
class EvalOptions:
    """What `rag eval` was asked for, beyond the question set."""

    k: int = 10
    modes: tuple[str, ...] = MODES
    fusion: FusionConfig = FusionConfig()
    calibrate: bool = False
    answer_rate: float | None = None  # calibrate to answer this share of answerable questions
    threshold: float | None = None  # judge abstention at this threshold instead of the index's


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise RagError(f"--modes takes a comma list of {', '.join(MODES)}; got {text!r}")
    return list(dict.fromkeys(modes))


def _search_all(searcher: Searcher, questions: Sequence[Question], vectors: np.ndarray, k: int) -> tuple[list[Answer], list[float]]:
    answers, millis = [], []
    for q, v in zip(questions, vectors):
        started = time.perf_counter()
        answers.append(searcher.answer(q.question, v, k))
        millis.append((time.perf_counter() - started) * 1000)
    return answers, millis


def correct_flags(questions: Sequence[Question], run: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int) -> np.ndarray:
    """Per question: answerable and something relevant among the hits it shows."""
    return np.array([q.answerable and any(d in qrels.get(q.id, {}) for d in run.get(q.id, [])[:k]) for q in questions])


def evaluate(
    index: IndexReader, encoder: Encoder, questions: Sequence[Question], options: EvalOptions, judge: Judge, depth: int,
) -> tuple[list[ModeResult], float, list[Answer], np.ndarray]:
    """Per-mode results; also the per-question encode time, and the hybrid (else first mode's)
    answers with their correct flags."""
    model = model_for(index.manifest.abstention, index.manifest.model)
    if options.threshold is not None:
        model = model.with_threshold(options.threshold)
    searchers = {m: Searcher(index, encoder, replace(options.fusion, mode=m), model) for m in options.modes}
    first = searchers[options.modes[0]]
    started = time.perf_counter()
    vectors = first.encode([q.question for q in questions])
    encode_ms = (time.perf_counter() - started) * 1000 / max(len(questions), 1)
    results: list[ModeResult] = []
    kept: list[Answer] = []
    kept_correct = np.zeros(0, dtype=bool)
    for mode, searcher in searchers.items():
        answers, millis = _search_all(searcher, questions, vectors, depth)
        qrels, run = judge(questions, answers)
        metrics, curve = ir_metrics(qrels, run)
        extra = {**answer_hits(questions, answers, (1, 5, options.k)), **source_hits(questions, answers, (1, 5))}
        per_source = by_source_figures(questions, answers)
        correct = correct_flags(questions, run, qrels, options.k)
        coverage, risk = risk_coverage(np.array([a.support for a in answers]), correct)
        results.append(
            ModeResult(
                mode=mode,
                metrics=metrics,
                curve=curve,
                extra=extra,
                latency_ms={"p50": percentile(millis, 50), "p95": percentile(millis, 95)},
                abstention=abstention(questions, answers),
                by_source=per_source,
                failures=failures(questions, answers, run, qrels, options.k),
                risk=(tuple(coverage.tolist()), tuple(risk.tolist())),
            )
        )
        if mode == "hybrid" or not kept:
            kept, kept_correct = answers, correct
    return results, encode_ms, kept, kept_correct


def labelled(questions: Sequence[Question], answers: Sequence[Answer], group_of: Callable[[Question, Answer], str],
             relevant: Callable[[Question, Hit], bool]) -> list[Labelled]:
    """Calibration data: each question's hit features, its label, its group, and which of its
    hits hold the answer."""
    return [
        Labelled(
            np.array([h.features for h in a.hits], dtype=np.float64).reshape(len(a.hits), -1),
            q.answerable,
            group_of(q, a),
            tuple(q.answerable and relevant(q, h) for h in a.hits),
        )
        for q, a in zip(questions, answers)
    ]


def contains(q: Question, hit: Hit) -> bool:
    return contains_answer(hit.text, q.answers)


def calibrate_index(index_dir: Path, index: Index, data: list[Labelled], source: str, answer_rate: float | None) -> dict[str, Any]:
    """Fit the abstention model on labelled questions, report it out of sample (each group left
    out in turn) and store it with the index as a new generation."""
    answerable = sum(q.answerable for q in data)
    unanswerable = len(data) - answerable
    if not answerable or not unanswerable:
        raise RagError('--calibrate needs both answerable and unanswerable questions ("answerable": false)')
    base = model_for(index.manifest.abstention, index.manifest.model)
    refit = answerable >= MIN_PER_CLASS_TO_REFIT and unanswerable >= MIN_PER_CLASS_TO_REFIT
    groups = sorted({q.group for q in data})
    rule = f"answer {answer_rate:.0%} of answerable questions" if answer_rate is not None else "fewest errors on both sides"
    fitted_on = f"{source}: {answerable} answerable and {unanswerable} unanswerable questions in {len(groups)} groups ({rule})"
    threshold_only, _, _ = cross_validate(data, answer_rate, False, base)
    result: dict[str, Any] = {
        "questions": source,
        "answerable": answerable,
        "unanswerable": unanswerable,
        "groups": len(groups),
        "rule": rule,
        "refit_weights": refit,
        "previous_threshold": round(base.threshold, 4),
        "out_of_sample": {"threshold_only": threshold_only.to_json()},
    }
    if refit:  # refitted weights are kept only when they do better out of sample
        refitted, _, _ = cross_validate(data, answer_rate, True, base)
        result["out_of_sample"]["weights_and_threshold"] = refitted.to_json()
        refit = bool(refitted.auroc > threshold_only.auroc)
        result["refit_weights"] = refit
    if refit:
        final = fit_model(data, fitted_on, answer_rate, features=base.features)
    else:
        final = replace(base.with_threshold(choose_threshold(base, data, answer_rate)), calibrated=True, fitted_on=fitted_on)
    support = question_support(final, data)
    result["threshold"] = round(final.threshold, 4)
    result["in_sample"] = rates(support, np.array([q.answerable for q in data]), final.threshold).to_json()
    manifest = replace(index.manifest, abstention=final, extra={**index.manifest.extra, "calibration": result})
    replace_manifest(index_dir, manifest, index.path)
    return result


def _group_by_source(q: Question, a: Answer) -> str:
    """A question's article: the first source it names, else the source of its best hit."""
    if q.group:
        return q.group
    if q.sources:
        return q.sources[0]
    return a.hits[0].source if a.hits else ""


def eval_jsonl(path: Path, where: Location | Path, searcher: Searcher, options: EvalOptions) -> EvalReport:
    """A JSONL question set against the index `searcher` serves (opened from `where`);
    relevance is answer containment."""
    questions = load_questions(path)
    index = searcher.index
    relevant = answer_passages(questions, [(p.id, p.text) for p in index.all_passages()])

    def judge(qs: Sequence[Question], answers: Sequence[Answer]) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
        return containment_judgements(qs, answers, relevant)

    results, encode_ms, answers, correct = evaluate(index, searcher.encoder, questions, options, judge, options.k)
    threshold = options.threshold if options.threshold is not None else model_for(index.manifest.abstention, index.manifest.model).threshold
    calibration = None
    if options.calibrate:
        data = labelled(questions, answers, _group_by_source, contains)
        folder = where.folder if isinstance(where, Location) else where
        assert isinstance(index, Index), "calibration needs a folder index"
        calibration = calibrate_index(folder, index, data, path.name, options.answer_rate)
        threshold = calibration["threshold"]
    return EvalReport(
        name=path.name,
        questions=len(questions),
        answerable=sum(q.answerable for q in questions),
        k=options.k,
        index=str(where),
        passages=len(index),
        relevance="a passage is relevant when its text contains an answer string (case-insensitive, whitespace-normalized)",
        encode_ms=encode_ms,
        threshold=threshold,
        results=results,
        fusion=_fusion_json(options.fusion),
        calibration=calibration,
    )


def _fusion_json(fusion: FusionConfig) -> dict[str, Any]:
    return {"fusion": fusion.fusion, "alpha": fusion.alpha, "sentence_weight": fusion.sentence_weight,
            "coverage_weight": fusion.coverage_weight, "rrf_k": fusion.rrf_k}


def beir_cache_dir(cache: Path, corpus_sha256: str, model: str, chunking: ChunkingConfig, precision: str) -> Path:
    """A folder per corpus and settings, so an unchanged corpus reuses its index: question sets
    over the same corpus (a split of a benchmark) share it, with any calibration stored in it."""
    from .onnx_encoder import recipe_key

    r = cache_record(corpus_sha256, model, chunking, precision)  # the folder records what its name hashes
    key = json.dumps([r["corpus_sha256"], r["model"], r["chunking"], r["format"], r["precision"], *recipe_key(precision)],
                     sort_keys=True)
    return cache / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


CACHE_RECORD = "cache.json"  # in each cached evaluation index: what its key was made of


def cache_record(corpus_sha256: str, model: str, chunking: ChunkingConfig, precision: str) -> dict[str, Any]:
    """What a cached evaluation index was built from and by (`beir_cache_dir` hashes the same)."""
    from .onnx_encoder import current_recipe

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
    from .build import build_encoder, build_index
    from .embedding import resolve_model
    from .onnx_encoder import DEFAULT_PRECISION
    from .onnx_encoder import question_encoder
    from .sources import plain_document
    from .store import inspect_index

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
    from .locations import Location, build_at, encoder_for_build, settings_at
    from .milvus_build import open_milvus, question_encoder_for
    from .sources import plain_document

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


def _extra_columns(report: EvalReport) -> list[str]:
    names = {m for r in report.results for m in r.extra}
    return sorted(names, key=lambda m: (m.split("@")[0], int(m.split("@")[1])))


def _rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    extras = _extra_columns(report)
    head = ["mode", *METRICS, *extras, "p50 ms", "p95 ms"]
    rows = [
        [r.mode, *(f"{r.metrics[m]:.3f}" for m in METRICS), *(f"{r.extra.get(m, float('nan')):.3f}" for m in extras),
         f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p95']:.1f}"]
        for r in report.results
    ]
    return head, rows


def _abstention_line(report: EvalReport, r: ModeResult) -> str:
    a = r.abstention
    parts = [f"abstention ({r.mode}, threshold {report.threshold:.3f}):"]
    if a["answerable"]:
        parts.append(f"answered {a['answer_rate']:.1%} of {a['answerable']} answerable;")
    if a["unanswerable"]:
        parts.append(f"abstained on {a['abstain_rate']:.1%} of {a['unanswerable']} unanswerable; AUROC {a['auroc']:.3f}")
    return " ".join(parts)


def format_table(report: EvalReport) -> str:
    """The side-by-side table, abstention and failure counts, as plain text."""
    head, rows = _rows(report)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    f = report.fusion
    lines = [
        f"{report.name}: {report.questions} questions ({report.answerable} answerable), top {report.k}, "
        f"index {report.index} ({report.passages} passages); hybrid = {f.get('fusion')}"
        + (f" alpha {f.get('alpha')}, sentence {f.get('sentence_weight')}, coverage {f.get('coverage_weight')}" if f.get("fusion") == "convex" else ""),
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
        *("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows),
        f"query encoding: {report.encode_ms:.1f} ms per question (batched); p50/p95 are the search alone",
    ]
    lines += [_abstention_line(report, r) for r in report.results]
    for r in report.results:
        b = r.by_source
        if b:
            parts = [f"by_source ({r.mode}): covers {b['by_source_recall']:.1%} of the sources that answer, adds "
                     f"{b['by_source_unrelated']:.2f} other sources per question"]
            if "by_source_multi_recall" in b:
                parts.append(f"; answered by several: {b['by_source_multi_recall']:.1%} covered ({b['by_source_multi_questions']:.0f} questions)")
            if "by_source_single_unrelated" in b:
                parts.append(f"; answered by one: {b['by_source_single_unrelated']:.2f} others added ({b['by_source_single_questions']:.0f} questions)")
            lines.append("".join(parts))
    if report.calibration:
        c = report.calibration
        oos = c["out_of_sample"]
        best = oos["weights_and_threshold"] if c["refit_weights"] else oos["threshold_only"]
        lines.append(
            f"calibrated ({c['rule']}; {'weights and threshold' if c['refit_weights'] else 'threshold only'}): threshold "
            f"{c['threshold']:.4f} (was {c['previous_threshold']:.4f}), stored with the index. Out of sample, each of "
            f"{c['groups']} groups left out in turn: answered {best['answer_rate']:.1%} of answerable, abstained on "
            f"{best['abstain_rate']:.1%} of unanswerable, AUROC {best['auroc']:.3f}"
        )
    for r in report.results:
        lines.append(f"failures ({r.mode}): {len(r.failures)} answerable questions with nothing relevant in the top {report.k}")
        for fl in r.failures[:10]:
            first = fl["first"]
            shown = " ".join(first["text"].split())[:100] if first else "(nothing)"
            lines.append(f"  {fl['id']}: {fl['question']}  -> first: {first['source'] if first else ''}: {shown}")
        if len(r.failures) > 10:
            lines.append(f"  ... and {len(r.failures) - 10} more (see --json or --report)")
    return "\n".join(lines)


def write_report(report: EvalReport, path: Path) -> list[Path]:
    """Write the table, failures, a hit@k plot and a risk-coverage plot (one PNG beside it)
    as Markdown or HTML."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".md", ".html", ".htm"):
        raise RagError(f"--report {path}: give a .md or .html file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    plot = path.with_suffix(".png")
    fig, (ax, rc) = plt.subplots(1, 2, figsize=(11, 4))
    for r in report.results:
        ks = sorted(r.curve)
        ax.plot(ks, [r.curve[k] for k in ks], marker="o", label=r.mode)
        if len(r.risk[0]):
            rc.plot(r.risk[0], r.risk[1], label=r.mode)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k (share of answerable questions)")
    ax.set_title(f"{report.name}: hit@k by mode")
    ax.set_xticks(list(range(1, 11)))
    ax.grid(alpha=0.3)
    ax.legend()
    rc.set_xlabel("coverage (share of questions answered)")
    rc.set_ylabel(f"risk (answered, no answer in the top {report.k})")
    rc.set_title("risk-coverage, as the support threshold falls")
    rc.set_xlim(0, 1)
    rc.set_ylim(0, 1)
    rc.grid(alpha=0.3)
    rc.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)

    table = format_table(report).splitlines()
    cols, rows = _rows(report)
    notes = [line for line in table[2 + len(report.results) :] if not line.startswith(("  ", "failures"))]
    if path.suffix.lower() == ".md":
        parts = [f"# Evaluation: {report.name}", "", table[0], "", f"Relevance: {report.relevance}.", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        parts += ["", *notes, "", f"![hit@k and risk-coverage by mode]({plot.name})", ""]
        for r in report.results:
            parts += [f"## Failures: {r.mode} ({len(r.failures)})", ""]
            for fl in r.failures:
                first = fl["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                parts.append(f"- `{fl['id']}` {fl['question']} (answers: {', '.join(fl['answers']) or 'qrels'}) — first: "
                             f"`{first['source'] if first else ''}` {shown}")
            parts.append("")
        path.write_text("\n".join(parts), "utf-8")
    else:
        e = html.escape
        body = [f"<h1>Evaluation: {e(report.name)}</h1>", f"<p>{e(table[0])}</p><p>Relevance: {e(report.relevance)}.</p>",
                "<table border=1 cellpadding=4><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        body += ["</table>", *(f"<p>{e(n)}</p>" for n in notes), f'<p><img src="{e(plot.name)}" alt="hit@k and risk-coverage by mode"></p>']
        for r in report.results:
            body.append(f"<h2>Failures: {e(r.mode)} ({len(r.failures)})</h2><ul>")
            for fl in r.failures:
                first = fl["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                body.append(f"<li><code>{e(str(fl['id']))}</code> {e(fl['question'])} — first: <code>{e(first['source'] if first else '')}</code> {e(shown)}</li>")
            body.append("</ul>")
        path.write_text("<!doctype html><meta charset=utf-8><title>Evaluation</title>" + "\n".join(body), "utf-8")
    return [path, plot]

