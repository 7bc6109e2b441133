"""Stage 5 wired together: exact citations, support and threshold, missing words, modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import HashEncoder

from rag.answer.fusion import FusionConfig
from rag.answer.searcher import Searcher
from rag.checks import check_k, check_question
from rag.errors import RagError
from rag.index.build import build_index
from rag.index.reading import open_index


@pytest.fixture
def searcher(small_sources: Path, tmp_path: Path, fake_encoder) -> Searcher:
    build_index(small_sources, tmp_path / "index", fake_encoder)
    return Searcher(open_index(tmp_path / "index"), fake_encoder)


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
    assert set(data) == {"question", "answered", "supporting", "support", "threshold", "abstain", "missing", "hits",
                         "by_source", "figures_differ", "changed_sources"}
    assert data["supporting"] == sum(h["support"] >= data["threshold"] for h in data["hits"])
    assert data["abstain"] == "lenient"
    assert set(data["hits"][0]) == {"rank", "score", "support", "source", "title", "start", "end", "text", "highlight"}


def test_answered_is_the_best_hit_support_reaching_the_threshold(searcher: Searcher):
    for question in ("bakery ovens wood", "When did the ferry stop?", "chocolate cake recipe"):
        answer = searcher.ask(question, k=3)
        assert answer.support == max(h.support for h in answer.hits)
        assert answer.answered == (answer.support >= answer.threshold)
        assert answer.threshold == searcher.index.manifest.abstention.threshold
        assert all(0.0 < h.support < 1.0 for h in answer.hits)


def test_threshold_decides(searcher: Searcher):
    searcher.abstention = searcher.abstention.with_threshold(1.0)
    answer = searcher.ask("bakery ovens wood", k=3)
    assert answer.answered is False and answer.hits
    searcher.abstention = searcher.abstention.with_threshold(0.0)
    assert searcher.ask("bakery ovens wood", k=3).answered is True


def test_missing_words_are_the_ones_no_shown_passage_holds(searcher: Searcher):
    answer = searcher.ask("When did the bakery ovens stop burning zanzibar?", k=5)
    # "burning" and "stop" are found as "burned" and "stopped" (stems, as BM25 matches them);
    # "When" and "did" are question words, not content; "zanzibar" was never seen
    assert answer.missing == ("zanzibar",)
    stem = searcher._stem
    for k in (1, 2, 3):
        answer = searcher.ask("When did the bakery ovens stop burning zanzibar?", k=k)
        shown = {stem(w) for h in answer.hits for w in h.text.lower().replace(".", " ").split()}
        for word in ("bakery", "ovens", "stop", "burning", "zanzibar"):
            assert (word in answer.missing) == (stem(word) not in shown)
    wider = searcher.ask("snow harbour bakery", k=1)  # one passage cannot hold all three
    assert wider.missing and all(w in ("snow", "harbour", "bakery") for w in wider.missing)
    assert len(searcher.ask("snow harbour bakery", k=5).missing) < len(wider.missing)


def test_missing_words_keep_the_question_spelling(searcher: Searcher):
    assert searcher.ask("Who founded Atlantis?", k=2).missing == ("founded", "Atlantis")


def test_modes_and_fusions_all_return_citations(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    for mode in ("dense", "bm25", "hybrid"):
        for fusion in ("rrf", "convex"):
            answer = Searcher(index, fake_encoder, FusionConfig(mode=mode, fusion=fusion)).ask("snow summit", 3)
            assert answer.hits[0].source == "volcano.txt"


def test_source_filter(searcher: Searcher):
    answer = searcher.ask("snow", k=5, sources=["notes/river.txt"])
    assert answer.hits and {h.source for h in answer.hits} == {"notes/river.txt"}
    unfiltered = searcher.ask("snow", k=5)
    assert {h.source for h in unfiltered.hits} > {"notes/river.txt"}
    with pytest.raises(RagError, match="unknown source"):
        searcher.ask("snow", sources=["nope.txt"])


def test_model_mismatch_says_to_rebuild(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    other = HashEncoder(name="other-model", dimension=32)
    with pytest.raises(RagError, match="rebuild with: rag index --full --model other-model"):
        Searcher(open_index(tmp_path / "index"), other)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None, 7, "x" * 1001])
def test_bad_questions(question):
    with pytest.raises(RagError):
        check_question(question)


@pytest.mark.parametrize("k", [0, 101, -1, True, 2.5, float("inf"), float("nan"), "5", None])
def test_bad_k(k):
    with pytest.raises(RagError, match="k must be"):
        check_k(k)


def test_whole_float_k_is_accepted():
    assert check_k(5.0) == 5 and check_k(100) == 100


def test_question_words_do_not_steer_bm25(searcher: Searcher):
    """'who', 'did', 'which' are question frame, not content: they never become BM25 terms."""
    terms = searcher.terms("Who did which of these things when?")
    assert terms.words == ("things",)


def test_empty_index_answers_nothing(tmp_path: Path, fake_encoder):
    from dataclasses import replace

    from rag.sources.files import load_documents

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.txt").write_text("One short sentence here.\n")
    build_index(tmp_path / "s", tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    empty = replace(index, passages=())
    answer = Searcher(empty, fake_encoder).answer("anything", np.zeros(fake_encoder.dimension, np.float32), 3)
    assert answer.hits == () and not answer.answered and answer.missing == ("anything",)
    assert load_documents(tmp_path / "s")


def test_the_strict_point_abstains_where_the_lenient_one_answers(searcher: Searcher):
    from dataclasses import replace

    from rag.checks import check_abstain

    model = replace(searcher.abstention, strict_threshold=0.999)
    strict = Searcher(searcher.index, searcher.encoder, abstention=model)
    question = "When did the bakery ovens stop burning wood?"
    lenient, hard = strict.ask(question, k=3), strict.ask(question, k=3, abstain="strict")
    assert lenient.threshold == model.threshold and hard.threshold == 0.999
    assert hard.abstain == "strict" and not hard.answered and hard.to_json()["abstain"] == "strict"
    assert [h.text for h in hard.hits] == [h.text for h in lenient.hits]  # the same passages, judged apart
    assert [h.support for h in hard.hits] == [h.support for h in lenient.hits]
    with pytest.raises(RagError, match="abstain must be one of lenient, strict"):
        strict.ask(question, abstain="sometimes")
    with pytest.raises(RagError):
        check_abstain(None)
