"""`rag eval`: run a question set through every requested mode, side by side.

Questions are encoded once, in the same chunks `rag ask --questions` uses, and each mode ranks
from the same vectors, so the figures agree with a count made from `rag ask --json` output.
Abstention is judged on every mode's support scores; `--calibrate` fits the abstention model
on the set (leaving each article out in turn to report out-of-sample rates) and stores it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer import MODES, Answer, FusionConfig, Hit, Searcher
from rag.encoding import Encoder
from rag.errors import RagError
from rag.evaluation.calibration import (
    Labelled,
    choose_threshold,
    cross_validate,
    fit_model,
    question_support,
    rates,
    risk_coverage,
)
from rag.evaluation.metrics import (
    METRICS,
    abstention,
    answer_hits,
    answer_passages,
    by_source_figures,
    containment_judgements,
    failures,
    ir_metrics,
    percentile,
    source_hits,
)
from rag.evaluation.questions import Question, contains_answer, load_questions
from rag.index import Index, IndexReader, replace_manifest
from rag.locations import Location
from rag.models import model_for

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
                abstention=abstention(questions, answers, searcher.abstention.threshold_for("strict")),
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
