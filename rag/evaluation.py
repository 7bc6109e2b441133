"""Stage 6, hits -> figures: question sets, relevance by answer containment, and metrics.

Inputs are plain data (questions with answer strings, answers as produced by search), so the
same functions score a live run or a saved `rag ask --json` output.
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


def normalize(text: str) -> str:
    """Case-folded, whitespace-collapsed, curly quotes made straight."""
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.casefold().split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    body = normalize(text)
    return any(normalize(a) in body for a in answers if a.strip())


def read_question_records(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSONL question file, in order; each must have "id" and "question"."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        raise RagError(f"questions file '{path}' not found; give a JSONL file of questions") from None
    except (OSError, UnicodeDecodeError):
        raise RagError(f"cannot read questions file '{path}' as UTF-8 text") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise RagError(f"{path}:{number} is not valid JSON; write one object per line") from None
        if not isinstance(data, dict) or "id" not in data or "question" not in data:
            raise RagError(f'{path}:{number} needs an "id" and a "question"')
        records.append(data)
    if not records:
        raise RagError(f"questions file '{path}' holds no questions")
    return records


def load_questions(path: Path) -> list[Question]:
    """A question set: answers, sources and answerability default to none, none and true."""
    return [
        Question(
            id=str(data["id"]),
            question=str(data["question"]),
            answers=tuple(str(a) for a in data.get("answers") or ()),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            answerable=bool(data.get("answerable", True)),
        )
        for data in read_question_records(path)
    ]


def first_relevant_rank(answer: Answer, question: Question) -> int | None:
    """Rank of the first hit containing an answer string, if any."""
    for hit in answer.hits:
        if contains_answer(hit.text, question.answers):
            return hit.rank
    return None


@dataclass(frozen=True)
class Summary:
    answerable: int
    unanswerable: int
    hit_at: dict[int, float]
    mrr: float
    abstained_unanswerable: int
    abstained_answerable: int
    highlight_contains_answer: float


def summarize(
    questions: Sequence[Question], answers: Sequence[Answer], texts: dict[str, str], ks: Sequence[int] = (1, 3, 5, 10)
) -> Summary:
    """hit@k and MRR over answerable questions, abstention counts, and how often the
    highlighted sentence of the first relevant hit holds the answer."""
    answerable = [(q, a) for q, a in zip(questions, answers) if q.answerable]
    ranks = [first_relevant_rank(a, q) for q, a in answerable]
    highlight_ok = 0
    for (q, a), r in zip(answerable, ranks):
        if r is not None:
            hit = a.hits[r - 1]
            if contains_answer(texts[hit.source][hit.highlight[0] : hit.highlight[1]], q.answers):
                highlight_ok += 1
    n = max(len(answerable), 1)
    return Summary(
        answerable=len(answerable),
        unanswerable=len(questions) - len(answerable),
        hit_at={k: sum(1 for r in ranks if r is not None and r <= k) / n for k in ks},
        mrr=sum(1 / r for r in ranks if r is not None) / n,
        abstained_unanswerable=sum(1 for q, a in zip(questions, answers) if not q.answerable and not a.answered),
        abstained_answerable=sum(1 for q, a in answerable if not a.answered),
        highlight_contains_answer=highlight_ok / max(sum(r is not None for r in ranks), 1),
    )


