"""Retrieval quality on the shipped seed questions with the real model (a regression guard)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

from rag.evaluation import load_questions, summarize
from rag.search import Searcher
from rag.store import open_index

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def results(seed_index: Path, real_encoder):
    questions = load_questions(ROOT / "eval" / "seed_questions.jsonl")
    searcher = Searcher(open_index(seed_index), real_encoder)
    answers = searcher.ask_many([q.question for q in questions], k=10)
    texts = {p.name: p.read_text("utf-8") for p in SEEDS.iterdir()}
    return questions, answers, summarize(questions, answers, texts)


def test_question_set_is_well_formed(results):
    questions, _, summary = results
    assert summary.answerable >= 40 and summary.unanswerable >= 5
    for q in questions:
        if q.answerable:  # the answer is really in a named source
            assert any(
                any(a.lower() in (SEEDS / s).read_text("utf-8").lower() for a in q.answers) for s in q.sources
            ), q.id


def test_ranking(results):
    _, _, summary = results
    assert summary.hit_at[1] >= 0.75
    assert summary.hit_at[5] >= 0.95


def test_abstention(results):
    questions, answers, summary = results
    wrong = [q.question for q, a in zip(questions, answers) if a.answered != q.answerable]
    assert not wrong


def test_highlight_holds_the_answer(results):
    _, _, summary = results
    assert summary.highlight_contains_answer >= 0.85


def test_every_hit_is_an_exact_citation(results):
    _, answers, _ = results
    for answer in answers:
        for hit in answer.hits:
            text = (SEEDS / hit.source).read_text("utf-8")
            assert text[hit.start : hit.end] == hit.text
            assert hit.start <= hit.highlight[0] < hit.highlight[1] <= hit.end
