"""Fusion and evidence selection: pure functions checked by hand and against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rag.answer.evidence import (
    best_per_candidate,
    missing_words,
    rarest_missing,
    select_spans,
    sentence_scores,
)
from rag.answer.fusion import FusionConfig, Signals, convex, fuse, ranks, rrf
from rag.answer.retrieval import FULL_SORT_MAX, best_bm25_rows, top_of_postings
from rag.index.dense import top_rows
from rag.types import QueryTerms


def signals(dense, sentence, lexical, coverage) -> Signals:
    return Signals(*(np.asarray(x, dtype=np.float64) for x in (dense, sentence, lexical, coverage)))


def test_rrf_rewards_agreement():
    fused = rrf(np.array([0.9, 0.8, 0.1]), np.array([0.0, 5.0, 4.0]), k=60)
    assert np.argmax(fused) == 1  # second in one list and first in the other
    assert fused[1] == pytest.approx(1 / 62 + 1 / 61)


def test_convex_by_hand():
    s = signals([1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.0])
    # alpha .5, half sentence: 0.5 * (0.5 * dense + 0.5 * sentence) + 0.5 * lexical + 0.2 * coverage
    assert convex(s, 0.5, 0.5, 0.2).tolist() == pytest.approx([0.25 + 0.1, 0.25 + 0.5])
    assert convex(s, 0.4, 0.0, 0.0).tolist() == pytest.approx([0.4, 0.6])  # the old default, passage cosine only


def test_modes_pick_one_signal():
    s = signals([0.9, 0.1], [0.0, 0.0], [0.1, 0.9], [0, 0])
    assert np.argmax(fuse(s, FusionConfig(mode="dense"))) == 0
    assert np.argmax(fuse(s, FusionConfig(mode="bm25"))) == 1


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=50), st.integers(1, 60))
@example([0.0, 0.0, 1.0, 1.0], 1)  # ties at the cut: the lower index wins, as in a full sort
def test_top_rows_matches_full_sort(scores, n):
    scores = np.array(scores)
    expected = np.lexsort((np.arange(len(scores)), -scores))[:n]
    assert top_rows(scores, n).tolist() == expected.tolist()
    assert sorted(ranks(scores).tolist()) == list(range(1, len(scores) + 1))


@given(st.integers(1, 300), st.lists(st.lists(st.tuples(st.integers(0, 299), st.sampled_from([0.5, 1.0, 1.5, 2.25])),
                                              max_size=120), max_size=5), st.integers(1, 40))
@example(50, [[(3, 1.0), (7, 1.0)], [(7, 0.5), (9, 1.5)]], 5)  # fewer rows hold a term than asked: the rest fill up
def test_top_of_postings_is_the_full_sort(passages, terms, n):
    """BM25's best rows found among the postings equal a sort of every passage, ties and
    passages without a question word included."""
    postings = [{row % passages: w for row, w in term} for term in terms]  # a row once per term
    rows = np.array([r for term in postings for r in term], dtype=np.int64)
    weights = np.array([w for term in postings for w in term.values()])
    scores = np.bincount(rows, weights=weights, minlength=passages).astype(np.float64)
    assert top_of_postings(scores, rows, len(postings), n).tolist() == top_rows(scores, n).tolist()


@given(st.integers(1, 3 * FULL_SORT_MAX), st.lists(st.integers(0, 3 * FULL_SORT_MAX), max_size=300), st.integers(1, 40),
       st.integers(0, 2**32 - 1))
@example(3 * FULL_SORT_MAX, [5, 9, 11], 5, 0)  # few postings in a large corpus: the postings are ranked
@example(10, [1, 2, 3], 5, 0)  # a small corpus: every row is sorted
def test_best_bm25_rows_is_the_full_sort_whichever_way_it_goes(passages, rows, n, seed):
    """Choosing between a sort of every row and the postings never changes the rows found."""
    rows = np.unique(np.array(rows, dtype=np.int64) % passages)
    scores = np.zeros(passages)
    scores[rows] = np.random.default_rng(seed).choice([0.5, 1.0, 2.0], size=len(rows))
    assert best_bm25_rows(scores, rows, 1, n).tolist() == top_rows(scores, n).tolist()


@pytest.mark.parametrize("kwargs,name", [({"mode": "x"}, "mode"), ({"fusion": "x"}, "fusion"), ({"alpha": 2}, "alpha"),
                                         ({"sentence_weight": -0.1}, "sentence_weight"), ({"coverage_weight": 11}, "coverage_weight"),
                                         ({"rrf_k": 0}, "rrf_k")])
def test_config_errors_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FusionConfig(**kwargs)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=8), st.data())
def test_best_per_candidate_matches_brute_force(counts, data):
    owner = np.repeat(np.arange(len(counts)), counts)
    scores = np.array(data.draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=len(owner), max_size=len(owner))))
    best = best_per_candidate(owner, scores, len(counts))
    for c in range(len(counts)):
        rows = np.flatnonzero(owner == c)
        assert owner[best[c]] == c and scores[best[c]] == scores[rows].max()


def test_sentence_scores_add_weighted_coverage():
    assert sentence_scores(np.array([0.5, 0.2]), np.array([0.0, 1.0]), 0.3).tolist() == pytest.approx([0.5, 0.5])


def test_select_spans_never_repeats_a_sentence():
    s = [(0, 10), (11, 20), (21, 30), (31, 40), (41, 50)]
    sentences = [s[0:3], s[2:5], s[1:3], [(0, 5)]]
    sources = ["a", "a", "a", "b"]
    chosen = select_spans([1, 0, 2, 3], sources, sentences, k=10)
    # passage 1 whole; passage 0 trimmed to its unseen sentences; 2 adds nothing; 3 is elsewhere
    assert chosen == [(1, 0, 3), (0, 0, 2), (3, 0, 1)]
    assert select_spans([1, 0, 2, 3], sources, sentences, k=1) == [(1, 0, 3)]


def test_missing_words_and_rarest_missing():
    terms = QueryTerms(words=("Ovens", "wood", "Zanzibar"), stems=("oven", "wood", "zanzibar"), ids=(4, 2, -1), negated=False)
    present = np.array([False, True])  # terms.known is [2, 4]: wood (2) absent, ovens (4) present
    assert missing_words(terms, present) == ("wood", "Zanzibar")
    assert rarest_missing(terms, present, np.ones(10), 2.0) == 1.0  # an unseen word is the rarest
    seen = QueryTerms(words=("Ovens", "wood"), stems=("oven", "wood"), ids=(4, 2), negated=False)
    idf = np.zeros(10)
    idf[2], idf[4] = 1.5, 3.0
    assert rarest_missing(seen, np.array([False, True]), idf, 3.0) == pytest.approx(0.5)
    assert rarest_missing(seen, np.array([True, True]), idf, 3.0) == 0.0
