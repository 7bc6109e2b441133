"""Words as BM25 sees them: the stopword lists, question terms, sentence term lists, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.answer.query import analyze
from rag.index.lexical import (
    build_bm25,
    coverage,
    present_by_owner,
    sentence_terms,
    term_ids,
    term_maxima,
)
from rag.index.terms import DOCUMENT_STOPWORDS, QUESTION_STOPWORDS, is_negated, stemmer


def test_stopword_lists_are_bm25s_own():
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS

    assert DOCUMENT_STOPWORDS == frozenset(STOPWORDS_EN)
    assert QUESTION_STOPWORDS == (frozenset(STOPWORDS_EN_PLUS) - {"won"}) | DOCUMENT_STOPWORDS  # "Who won?"


def test_sentence_terms_match_what_bm25_indexed():
    texts = ["The ovens burned wood until 1921.", "A ferry crossed the river.", ""]
    retriever, tokenizer, _ = build_bm25(texts)
    vocab = tokenizer.get_vocab_dict()
    flat, offsets = sentence_terms(texts, vocab)
    assert len(offsets) == 4 and offsets[-1] == len(flat)
    # BM25 scores a sentence's own terms on that sentence only
    for i, text in enumerate(texts[:2]):
        ids = flat[offsets[i] : offsets[i + 1]].tolist()
        scores = retriever.get_scores_from_ids(ids)
        assert scores[i] > 0 and all(scores[j] == 0 for j in range(2) if j != i)
    assert offsets[2] == offsets[3]  # the empty text has no terms


def test_question_terms_stem_like_bm25():
    _, tokenizer, _ = build_bm25(["The ovens burned wood until 1921 in Bamako."])
    vocab = tokenizer.get_vocab_dict()
    terms = analyze("Who burns the oven in Bamako, and why didn't anyone stop?", stemmer(), vocab)
    assert terms.words == ("burns", "oven", "Bamako", "anyone", "stop")
    assert [i >= 0 for i in terms.ids] == [True, True, True, False, False]
    assert terms.negated and terms.unseen == 2
    assert terms.known.tolist() == sorted(i for i in terms.ids if i >= 0)


@pytest.mark.parametrize("text,negated", [("Who did not attack?", True), ("Why isn't it open?", True), ("Why isn’t it open?", True),
                                          ("Was anyone killed?", False), ("Notable people", False), ("Nobody came", False)])
def test_negation(text, negated):
    assert is_negated(text) is negated


words = st.sampled_from(["alpha", "beta", "gamma", "delta", "river", "ovens", "the", "of"])


@given(st.lists(st.lists(words, max_size=6).map(" ".join), min_size=1, max_size=8), st.lists(words, min_size=1, max_size=4), st.data())
def test_coverage_and_present_match_brute_force(sentences, question, data):
    _, tokenizer, _ = build_bm25(sentences + ["alpha beta gamma delta river ovens"])
    vocab = tokenizer.get_vocab_dict()
    flat, offsets = sentence_terms(sentences, vocab)
    stem = stemmer()
    known = np.unique(np.array(term_ids(" ".join(question), stem, vocab), dtype=np.int64))
    weights = np.linspace(1.0, 2.0, len(known))
    total = float(weights.sum()) + 1.5  # as if one unseen word weighed 1.5
    rows = np.array(data.draw(st.lists(st.integers(0, len(sentences) - 1), max_size=6)), dtype=np.int64)
    got = coverage(flat, offsets, rows, known, weights, total)
    for r, value in zip(rows, got):
        ids = set(term_ids(sentences[r], stem, vocab))
        assert value == pytest.approx(sum(w for t, w in zip(known, weights) if t in ids) / total)
    union = set().union(*(term_ids(sentences[r], stem, vocab) for r in rows)) if len(rows) else set()
    held = present_by_owner(flat, offsets, rows, np.zeros(len(rows), dtype=np.int64), 1, known)[0]
    assert held.tolist() == [int(t) in union for t in known]


@given(st.lists(st.lists(st.floats(0.125, 10, width=32), max_size=5), min_size=1, max_size=12))
def test_term_maxima_matches_dense_max(columns):
    data = np.array([v for col in columns for v in col], dtype=np.float32)
    indptr = np.cumsum([0] + [len(col) for col in columns])
    expected = [max(col) if col else 0.0 for col in columns]
    np.testing.assert_allclose(term_maxima(data, indptr), expected, rtol=1e-6)
