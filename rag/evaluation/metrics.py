"""Stage 6, hits -> figures: relevance, IR metrics, abstention rates, failures.

Inputs are plain data: questions with answer strings or BEIR qrels, and answers as search
produces them, so the same functions score a live run or a saved `rag ask --json` output.
Metrics come from trec_eval (through pytrec_eval), not from hand-written formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.answer import Answer
from rag.evaluation.questions import _MISSING, Question, contains_answer, normalize

METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")
CURVE_KS = tuple(range(1, 11))


def ir_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, list[str]], ks: Sequence[int] = CURVE_KS
) -> tuple[dict[str, float], dict[int, float]]:
    """Mean metrics over the questions of `qrels` (a question missing from `run` scores 0),
    and hit@k for each k in `ks`. `run` lists document ids best first; the top 10 count."""
    import pytrec_eval

    measures = {f"success.{','.join(str(k) for k in sorted(set(ks) | {1, 3, 5, 10}))}", "recall.10", "ndcg_cut.10", "recip_rank"}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    # trec_eval orders by score, so scores encode our ranks; recip_rank on the top 10 is MRR@10
    trec_run = {q: {d: float(10 - i) for i, d in enumerate(docs[:10])} for q, docs in run.items() if docs}
    per_question = evaluator.evaluate(trec_run)
    n = max(len(qrels), 1)

    def mean(measure: str) -> float:
        return sum(per_question.get(q, {}).get(measure, 0.0) for q in qrels) / n

    names = {"hit@1": "success_1", "hit@3": "success_3", "hit@5": "success_5", "hit@10": "success_10",
             "recall@10": "recall_10", "mrr@10": "recip_rank", "ndcg@10": "ndcg_cut_10"}
    return {name: mean(m) for name, m in names.items()}, {k: mean(f"success_{k}") for k in ks}


def answer_passages(questions: Sequence[Question], passages: Sequence[tuple[int, str]]) -> dict[str, set[int]]:
    """For each answerable question, the ids of the passages whose text contains an answer."""
    normalized = [(pid, normalize(text)) for pid, text in passages]
    out = {}
    for q in questions:
        if q.answerable:
            needles = [normalize(a) for a in q.answers if a.strip()]
            out[q.id] = {pid for pid, text in normalized if any(n in text for n in needles)}
    return out


def containment_judgements(
    questions: Sequence[Question], answers: Sequence[Answer], relevant: dict[str, set[int]]
) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
    """qrels and run for answer-containment relevance over the answerable questions.

    A hit counts when the text it shows contains an answer, exactly as a reader of
    `rag ask --json` would count it; passages holding an answer anywhere in the index make
    up the recall denominator."""
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for q, a in zip(questions, answers):
        if not q.answerable:
            continue
        qrels[q.id] = {f"p{pid}": 1 for pid in relevant.get(q.id, ())} or {_MISSING: 1}
        run[q.id] = [
            f"p{h.passage_id}" if contains_answer(h.text, q.answers) else f"p{h.passage_id}-shown-without-answer"
            for h in a.hits
        ]
    return qrels, run


def document_run(answers: Sequence[Answer], questions: Sequence[Question], k: int) -> dict[str, list[str]]:
    """Documents in the order of their best passage, for document-level relevance (BEIR)."""
    run = {}
    for q, a in zip(questions, answers):
        docs: list[str] = []
        for h in a.hits:
            if h.source not in docs:
                docs.append(h.source)
        run[q.id] = docs[:k]
    return run


def answer_hits(questions: Sequence[Question], answers: Sequence[Answer], ks: Sequence[int]) -> dict[str, float]:
    """Share of questions with answer strings whose top-k passages contain one (answer@k)."""
    scored = [(q, a) for q, a in zip(questions, answers) if q.answers]
    if not scored:
        return {}
    return {
        f"answer@{k}": sum(any(contains_answer(h.text, q.answers) for h in a.hits[:k]) for q, a in scored) / len(scored)
        for k in ks
    }


def source_hits(questions: Sequence[Question], answers: Sequence[Answer], ks: Sequence[int]) -> dict[str, float]:
    """Share of answerable questions naming sources with a hit from one of them in the top k."""
    scored = [(q, a) for q, a in zip(questions, answers) if q.answerable and q.sources]
    if not scored:
        return {}
    return {
        f"source@{k}": sum(any(h.source in q.sources for h in a.hits[:k]) for q, a in scored) / len(scored)
        for k in ks
    }


def abstention(questions: Sequence[Question], answers: Sequence[Answer],
               strict_threshold: float | None = None) -> dict[str, float | int]:
    """Counts, the answer rate on answerable questions, the abstention rate on unanswerable
    ones, and the area under the ROC curve of the support score (nan without both kinds); with
    `strict_threshold`, the two rates again at the strict operating point."""
    from rag.evaluation.calibration import auroc

    pairs = list(zip(questions, answers))
    answerable = [a for q, a in pairs if q.answerable]
    unanswerable = [a for q, a in pairs if not q.answerable]
    strict: dict[str, float | int] = {}
    if strict_threshold is not None:
        strict = {
            "strict_threshold": round(strict_threshold, 4),
            "strict_answer_rate": (sum(a.support >= strict_threshold for a in answerable) / len(answerable)
                                   if answerable else float("nan")),
            "strict_abstain_rate": (sum(a.support < strict_threshold for a in unanswerable) / len(unanswerable)
                                    if unanswerable else float("nan")),
        }
    return {
        **strict,
        "answerable": len(answerable),
        "answerable_abstained": sum(not a.answered for a in answerable),
        "unanswerable": len(unanswerable),
        "unanswerable_abstained": sum(not a.answered for a in unanswerable),
        "answer_rate": sum(a.answered for a in answerable) / len(answerable) if answerable else float("nan"),
        "abstain_rate": sum(not a.answered for a in unanswerable) / len(unanswerable) if unanswerable else float("nan"),
        "auroc": auroc([a.support for _, a in pairs], [q.answerable for q, _ in pairs]),
    }


def by_source_figures(questions: Sequence[Question], answers: Sequence[Answer]) -> dict[str, float]:
    """How `by_source` does on answerable questions that name the sources answering them: the
    share of those sources it covers, and how many other sources it adds, on average (also
    for questions several sources answer and for those only one does)."""
    out: dict[str, float] = {}
    rows = [(set(q.sources), {s.source for s in a.by_source}) for q, a in zip(questions, answers) if q.answerable and q.sources]
    for name, keep in (("", lambda n: True), ("multi_", lambda n: n > 1), ("single_", lambda n: n == 1)):
        chosen = [(want, got) for want, got in rows if keep(len(want))]
        if chosen:
            out[f"by_source_{name}recall"] = sum(len(want & got) / len(want) for want, got in chosen) / len(chosen)
            out[f"by_source_{name}unrelated"] = sum(len(got - want) for want, got in chosen) / len(chosen)
            out[f"by_source_{name}questions"] = float(len(chosen))
    return out


def failures(
    questions: Sequence[Question], answers: Sequence[Answer], run: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int
) -> list[dict[str, Any]]:
    """Answerable questions with nothing relevant in the top k, and what ranked first."""
    out = []
    for q, a in zip(questions, answers):
        if q.id not in qrels or any(d in qrels[q.id] for d in run.get(q.id, [])[:k]):
            continue
        top = a.hits[0] if a.hits else None
        out.append(
            {
                "id": q.id,
                "question": q.question,
                "answers": list(q.answers),
                "first": None if top is None else {"source": top.source, "start": top.start, "end": top.end, "text": top.text},
            }
        )
    return out


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]
