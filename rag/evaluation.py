"""Stage 6, hits -> figures: question sets, relevance, IR metrics, failures, calibration.

Inputs are plain data: questions with answer strings or BEIR qrels, and answers as search
produces them, so the same functions score a live run or a saved `rag ask --json` output.
Metrics come from trec_eval (through pytrec_eval), not from hand-written formulas.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RagError
from .types import Answer


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    answerable: bool = True
    group: str = ""  # cross-validation unit (an article, a question set); "" = derive one


def normalize(text: str) -> str:
    """Lower-cased with whitespace runs collapsed: how answers are matched to passages."""
    return " ".join(text.lower().split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    body = normalize(text)
    return any(normalize(a) in body for a in answers if a.strip())


def read_question_records(path: Path, numbered: bool = False) -> Any:
    """The objects of a JSONL question file, in order; each must have "id" and "question".
    With `numbered`, (line number, object) pairs."""
    if not path.is_file():
        raise RagError(f"questions file '{path}' not found; give a JSONL file of questions")
    records = _read_jsonl(path)
    for number, data in records:
        if "id" not in data or "question" not in data:
            raise RagError(f'{path}:{number} needs an "id" and a "question"')
    if not records:
        raise RagError(f"questions file '{path}' holds no questions")
    return records if numbered else [data for _, data in records]


def _field(where: str, data: dict[str, Any], name: str, kind: str, default: Any) -> Any:
    """One field of a question record, checked: "string", "strings" (a list of them), "bool"
    or "id" (a string or an integer); a wrong type is a one-line error naming file, line and field."""
    value = data.get(name, default)
    ok = {
        "string": isinstance(value, str),
        "strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "bool": isinstance(value, bool),
        "id": isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)),
    }[kind]
    if not ok:
        wanted = {"string": "a string", "strings": "a list of strings", "bool": "true or false",
                  "id": "a string or a whole number"}[kind]
        raise RagError(f'{where}: "{name}" must be {wanted}, got {json.dumps(value)[:60]}')
    return value


def load_questions(path: Path) -> list[Question]:
    """A question set: answers, sources and answerability default to none, none and true."""
    questions = []
    for number, data in read_question_records(path, numbered=True):
        where = f"{path}:{number}"
        questions.append(
            Question(
                id=str(_field(where, data, "id", "id", None)),
                question=_field(where, data, "question", "string", None),
                answers=tuple(_field(where, data, "answers", "strings", [])),
                sources=tuple(_field(where, data, "sources", "strings", [])),
                answerable=_field(where, data, "answerable", "bool", True),
                group=_field(where, data, "group", "string", ""),
            )
        )
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise RagError(f'{path}: the id "{q.id}" is used twice; give every question its own id')
        seen.add(q.id)
    return questions


METRICS = ("hit@1", "hit@3", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10")
CURVE_KS = tuple(range(1, 11))
_MISSING = "<no relevant passage in the index>"


@dataclass(frozen=True)
class BeirSet:
    """A BEIR folder: corpus, queries, graded relevance, and optional answer strings.

    A query is answerable when its "answerable" field says so, else when it has qrels; an
    answerable query without qrels counts for abstention but not for ranking metrics."""

    name: str
    corpus: list[tuple[str, str, str]]  # (id, title, text)
    questions: list[Question]
    qrels: dict[str, dict[str, int]]
    corpus_sha256: str


def _read_text(path: Path) -> str:
    """A text file as UTF-8 (a byte-order mark, as some editors write, is dropped)."""
    try:
        return path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read {path} ({exc.__class__.__name__}); it must be UTF-8 text") from None


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; a bad line is a one-line error naming it."""
    out = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise RagError(f"{path}:{number} is not valid JSON; write one object per line") from None
        if not isinstance(data, dict):
            raise RagError(f"{path}:{number} must be a JSON object")
        out.append((number, data))
    return out


def load_beir(folder: Path, split: str = "test") -> BeirSet:
    """corpus.jsonl, queries.jsonl, qrels/<split>.tsv and, if present, answers.jsonl."""
    import hashlib

    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).is_file():
            raise RagError(f"'{folder}' is not a BEIR folder: {name} is missing")
    corpus = []
    for number, d in _read_jsonl(folder / "corpus.jsonl"):
        where = f"{folder / 'corpus.jsonl'}:{number}"
        corpus.append((str(_field(where, d, "_id", "id", None)), _field(where, d, "title", "string", ""), _field(where, d, "text", "string", None)))
    qrels: dict[str, dict[str, int]] = {}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for number, line in enumerate(_read_text(qrels_path).splitlines(), 1):
        parts = line.split("\t")
        if number == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if not line.strip():
            continue
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            raise RagError(f"{qrels_path}:{number} needs query-id, corpus-id and a whole-number score, tab-separated")
        if int(parts[2]) > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    answers: dict[str, tuple[str, ...]] = {}
    if (folder / "answers.jsonl").is_file():
        for number, d in _read_jsonl(folder / "answers.jsonl"):
            where = f"{folder / 'answers.jsonl'}:{number}"
            answers[str(_field(where, d, "_id", "id", None))] = tuple(_field(where, d, "answers", "strings", []))
    questions = []
    for number, d in _read_jsonl(folder / "queries.jsonl"):
        where = f"{folder / 'queries.jsonl'}:{number}"
        qid = str(_field(where, d, "_id", "id", None))
        answerable = _field(where, d, "answerable", "bool", qid in qrels)
        if qid in qrels or "answerable" in d:
            questions.append(Question(qid, _field(where, d, "text", "string", None), answers.get(qid, ()),
                                      answerable=answerable, group=_field(where, d, "group", "string", "")))
    digest = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()
    return BeirSet(folder.name, corpus, questions, qrels, digest)


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


def abstention(questions: Sequence[Question], answers: Sequence[Answer]) -> dict[str, float | int]:
    """Counts, the answer rate on answerable questions, the abstention rate on unanswerable
    ones, and the area under the ROC curve of the support score (nan without both kinds)."""
    from .calibration import auroc

    pairs = list(zip(questions, answers))
    answerable = [a for q, a in pairs if q.answerable]
    unanswerable = [a for q, a in pairs if not q.answerable]
    return {
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
