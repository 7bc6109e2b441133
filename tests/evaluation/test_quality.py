"""Retrieval quality on the shipped seed questions with the real model (a regression guard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, served_searcher

from rag.answer.searcher import Searcher
from rag.evaluation.questions import contains_answer, load_questions
from rag.evaluation.runner import EvalOptions, eval_jsonl

pytestmark = pytest.mark.model
QUESTIONS = ROOT / "eval" / "seeds" / "dev.jsonl"  # the tuning split; test.jsonl is never tuned on


@pytest.fixture(scope="module")
def searcher(seed_index: Path) -> Searcher:
    return served_searcher(seed_index)


@pytest.fixture(scope="module")
def report(seed_index: Path, searcher: Searcher):
    return eval_jsonl(QUESTIONS, seed_index, searcher, EvalOptions(k=10, modes=("hybrid",))).results[0]


@pytest.mark.parametrize("split", ["dev", "test"])
def test_question_sets_are_well_formed(split: str):
    questions = load_questions(ROOT / "eval" / "seeds" / f"{split}.jsonl")
    for q in questions:
        if q.answerable:  # the answer is really in every named source
            assert q.sources and all(contains_answer((SEEDS / s).read_text("utf-8"), q.answers) for s in q.sources), q.id


def test_ranking_guard(report):
    """A regression guard on the tuning split (figures for the README come from the test split)."""
    assert report.metrics["hit@1"] >= 0.8
    assert report.metrics["hit@5"] >= 0.94


def test_abstention_guard(seed_index: Path, searcher: Searcher):
    kinds = {str(d["id"]): d["kind"] for d in map(json.loads, QUESTIONS.read_text().splitlines())}
    questions = load_questions(QUESTIONS)
    answers = searcher.ask_many([q.question for q in questions], k=5)
    off = [a for q, a in zip(questions, answers) if kinds[q.id] == "off_topic"]
    answerable = [a for q, a in zip(questions, answers) if q.answerable]
    assert sum(not a.answered for a in off) / len(off) >= 0.85
    assert sum(not a.answered for a in answerable) / len(answerable) <= 0.03


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
