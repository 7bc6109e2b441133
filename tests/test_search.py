"""Stage 5: fusion, de-duplication, highlight, abstention and their guards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import HashEncoder
from hypothesis import example, given
from hypothesis import strategies as st

from rag.build import build_index
from rag.errors import RagError
from rag.search import (
    SearchConfig,
    Searcher,
    calibrate_threshold,
    check_k,
    check_question,
    convex,
    ranks,
    rrf,
    select_spans,
    top_rows,
)
from rag.store import open_index


@pytest.fixture
def searcher(small_sources: Path, tmp_path: Path, fake_encoder) -> Searcher:
    build_index(small_sources, tmp_path / "index", fake_encoder)
    return Searcher(open_index(tmp_path / "index"), fake_encoder)


def test_rrf_rewards_agreement():
    dense = np.array([0.9, 0.8, 0.1])
    lexical = np.array([0.0, 5.0, 4.0])
    fused = rrf(dense, lexical, k=60)
    assert np.argmax(fused) == 1  # second in one list and first in the other
    assert fused[1] == pytest.approx(1 / 62 + 1 / 61)


def test_convex_is_a_weighted_sum():
    assert convex(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.25).tolist() == [0.25, 0.75]


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=50), st.integers(1, 60))
@example([0.0, 0.0, 1.0, 1.0], 1)  # ties at the cut: the lower index wins, as in a full sort
def test_top_rows_matches_full_sort(scores, n):
    scores = np.array(scores)
    expected = np.lexsort((np.arange(len(scores)), -scores))[:n]
    assert top_rows(scores, n).tolist() == expected.tolist()
    assert sorted(ranks(scores).tolist()) == list(range(1, len(scores) + 1))


def test_select_spans_never_repeats_a_sentence():
    s = [(0, 10), (11, 20), (21, 30), (31, 40), (41, 50)]
    sentences = [s[0:3], s[2:5], s[1:3], [(0, 5)]]
    sources = ["a", "a", "a", "b"]
    chosen = select_spans([1, 0, 2, 3], sources, sentences, k=10)
    # passage 1 whole; passage 0 trimmed to its unseen sentences; 2 adds nothing; 3 is elsewhere
    assert chosen == [(1, 0, 3), (0, 0, 2), (3, 0, 1)]
    shown = [sentences[r][a:b] for r, a, b in chosen]
    flat = [(src, span) for (r, _, _), spans in zip(chosen, shown) for src, span in ((sources[r], x) for x in spans)]
    assert len(flat) == len(set(flat))
    assert select_spans([1, 0, 2, 3], sources, sentences, k=1) == [(1, 0, 3)]


def test_hits_are_exact_citations(searcher: Searcher, small_sources: Path):
    answer = searcher.ask("When did the bakery ovens stop burning wood?", k=5)
    assert answer.hits and [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    scores = [h.score for h in answer.hits]
    assert scores == sorted(scores, reverse=True)
    seen = set()
    for h in answer.hits:
        text = (small_sources / h.source).read_text("utf-8")
        assert text[h.start : h.end] == h.text
        assert h.start <= h.highlight[0] < h.highlight[1] <= h.end
        for pos in range(h.start, h.end):
            assert (h.source, pos) not in seen or text[pos].isspace()
        seen.update((h.source, pos) for pos in range(h.start, h.end) if not text[pos].isspace())
    top = answer.hits[0]
    assert top.source == "bakery.md" and "1921" in top.text
    assert "1921" in (small_sources / top.source).read_text()[top.highlight[0] : top.highlight[1]]
    assert top.title == "The Old Bakery"


def test_json_shape(searcher: Searcher):
    data = searcher.ask("river ferry bridge", k=2).to_json()
    assert set(data) == {"question", "answered", "hits"}
    assert set(data["hits"][0]) == {"rank", "score", "source", "title", "start", "end", "text", "highlight"}


def test_modes_differ_and_all_return_citations(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    for mode in ("dense", "bm25", "hybrid"):
        for fusion in ("rrf", "convex"):
            answer = Searcher(index, fake_encoder, SearchConfig(mode=mode, fusion=fusion)).ask("snow summit", 3)
            assert answer.hits[0].source == "volcano.txt"


def test_abstains_below_threshold_and_still_lists_passages(searcher: Searcher):
    searcher.threshold = 0.99
    answer = searcher.ask("bakery ovens wood", k=3)
    assert answer.answered is False and answer.hits
    searcher.threshold = -1.0
    assert searcher.ask("bakery ovens wood", k=3).answered is True


def test_unrelated_words_do_not_look_like_a_perfect_lexical_match(searcher: Searcher):
    answer = searcher.ask("spring recipe chocolate cake oven temperature", k=1)
    assert answer.hits[0].lexical < 0.5


def test_calibrate_threshold_separates_and_splits_the_gap():
    assert calibrate_threshold([0.5, 0.6, 0.7], [0.1, 0.2, 0.3]) == pytest.approx(0.4)
    t = calibrate_threshold([0.4, 0.6], [0.1, 0.5])  # not separable: one error either way
    assert 0.1 < t <= 0.6


def test_model_mismatch_says_to_rebuild(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    other = HashEncoder(name="other-model", dimension=32)
    with pytest.raises(RagError, match="rebuild with: rag index --full --model other-model"):
        Searcher(open_index(tmp_path / "index"), other)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None, "x" * 1001])
def test_bad_questions(question):
    with pytest.raises(RagError):
        check_question(question)


@pytest.mark.parametrize("k", [0, 101, -1, True, 2.5])
def test_bad_k(k):
    with pytest.raises(RagError, match="-k must be"):
        check_k(k)


def test_config_errors_name_the_parameter():
    for kwargs, name in [({"mode": "x"}, "mode"), ({"fusion": "x"}, "fusion"), ({"alpha": 2}, "alpha"), ({"candidates": 0}, "candidates")]:
        with pytest.raises(ValueError, match=name):
            SearchConfig(**kwargs)


def test_source_filter(searcher: Searcher):
    answer = searcher.ask("snow", k=5, sources=["notes/river.txt"])
    assert answer.hits and {h.source for h in answer.hits} == {"notes/river.txt"}
    unfiltered = searcher.ask("snow", k=5)
    assert {h.source for h in unfiltered.hits} > {"notes/river.txt"}
    with pytest.raises(RagError, match="unknown source"):
        searcher.ask("snow", sources=["nope.txt"])
