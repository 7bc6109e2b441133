"""Retrieval quality on the shipped seed questions with the real model (a regression guard)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

from rag.eval_runner import eval_jsonl
from rag.evaluation import contains_answer, load_questions
from rag.search import Searcher
from rag.store import open_index

pytestmark = pytest.mark.model
QUESTIONS = ROOT / "eval" / "seed_questions.jsonl"


@pytest.fixture(scope="module")
def searcher(seed_index: Path, real_encoder) -> Searcher:
    return Searcher(open_index(seed_index), real_encoder)


@pytest.fixture(scope="module")
def report(seed_index: Path, searcher: Searcher):
    return eval_jsonl(QUESTIONS, seed_index, searcher, 10, ["hybrid"], False).results[0]


def test_question_set_is_well_formed():
    questions = load_questions(QUESTIONS)
    assert sum(q.answerable for q in questions) >= 40 and sum(not q.answerable for q in questions) >= 5
    for q in questions:
        if q.answerable:  # the answer is really in a named source
            assert any(contains_answer((SEEDS / s).read_text("utf-8"), q.answers) for s in q.sources), q.id


def test_ranking(report):
    assert report.metrics["hit@1"] >= 0.75
    assert report.metrics["hit@5"] >= 0.95


def test_abstention(report):
    a = report.abstention
    assert a["unanswerable_abstained"] == a["unanswerable"]
    assert a["answerable_abstained"] == 0


def test_highlight_holds_the_answer(searcher: Searcher):
    questions = [q for q in load_questions(QUESTIONS) if q.answerable]
    answers = searcher.ask_many([q.question for q in questions], k=5)
    held = found = 0
    for q, a in zip(questions, answers):
        hit = next((h for h in a.hits if contains_answer(h.text, q.answers)), None)
        if hit is not None:
            found += 1
            text = (SEEDS / hit.source).read_text("utf-8")
            held += contains_answer(text[hit.highlight[0] : hit.highlight[1]], q.answers)
    assert held / found >= 0.85


def test_every_hit_is_an_exact_citation(searcher: Searcher):
    for answer in searcher.ask_many([q.question for q in load_questions(QUESTIONS)], k=10):
        for hit in answer.hits:
            text = (SEEDS / hit.source).read_text("utf-8")
            assert text[hit.start : hit.end] == hit.text
            assert hit.start <= hit.highlight[0] < hit.highlight[1] <= hit.end
