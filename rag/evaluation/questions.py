"""Question sets as plain data: SQuAD-style JSON/JSONL with answers, and BEIR folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError


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
