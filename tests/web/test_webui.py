"""The page's HTML: exact marks, plain-text sources, messages instead of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.types import Answer, Hit
from rag.index.build import build_index
from rag.web.page import marked, render_answer, source_view, strength
from rag.web.startup import open_backend
from rag.web.state import AppState, ask_html

HOSTILE = '<script>window.pwned=1</script> <img src=x onerror="window.pwned=2"> **bold** [x](javascript:alert(1)) & done.'


def hit(text: str, start: int = 10, highlight: tuple[int, int] | None = None, support: float = 0.6) -> Hit:
    end = start + len(text)
    return Hit(1, 0.5, "evil.md", "<b>Title</b>", start, end, text, highlight or (start, end), 0, support)


def test_marked_wraps_exactly_the_highlight():
    assert marked("One. Two. Three.", 100, 105, 109) == "One. <mark>Two.</mark> Three."
    assert marked("a<b", 0, 1, 3) == "a<mark>&lt;b</mark>"


def test_hostile_text_is_shown_literally():
    page = render_answer(Answer("q", True, (hit(HOSTILE),), missing=("<script>",)), {"evil.md": "0123456789" + HOSTILE})
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "Not found in these passages: &lt;script&gt;" in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "onerror=&quot;window.pwned=2&quot;" in page
    assert "**bold**" in page and "&lt;b&gt;Title&lt;/b&gt;" in page
    assert page.count("<mark>") == 2  # the card's passage and the source view


def test_source_view_holds_the_whole_article_with_the_passage_marked():
    source = "Intro line.\nThe passage here. And its best sentence.\nOutro."
    start = source.index("The passage")
    text = "The passage here. And its best sentence."
    best = (source.index("And its"), source.index("And its") + len("And its best sentence."))
    view = source_view(source, start, start + len(text), best, "passage-1")
    assert view.startswith("Intro line.\n") and view.endswith("\nOutro.")
    assert '<span class="rag-in-passage" id="passage-1">The passage here. <mark>And its best sentence.</mark></span>' in view


def test_strength_cues_follow_the_support_the_card_shows():
    assert strength(hit("x", support=0.8), True, 0.4)[0] == "Strong evidence"  # half-way from 0.4 to 1 is 0.7
    assert strength(hit("x", support=0.5), True, 0.4)[0] == "Supports an answer"
    assert strength(hit("x", support=0.2), True, 0.4)[0] == "Weak evidence"
    assert strength(hit("x", support=0.9), False, 0.4)[0] == "Not an answer"
    page = render_answer(Answer("q", True, (hit("a", support=0.8), hit("b", support=0.2)), 0.8, 0.4), {})
    assert page.index("Strong evidence") < page.index("support 0.80") < page.index("Weak evidence") < page.index("support 0.20")
    assert "reaches 0.40" in page  # the threshold is explained on the page


@pytest.fixture
def state(small_sources: Path, tmp_path: Path, fake_encoder) -> AppState:
    build_index(small_sources, tmp_path / "index", fake_encoder)
    return AppState(lambda: open_backend(tmp_path / "index", fake_encoder))


def test_page_answers_with_cards(state: AppState):
    page = ask_html(state, "When did the ferry stop crossing the river?", 3, [])
    assert page.count('class="rag-card"') == 3 and "<mark>" in page
    assert "notes/river.txt" in page and "Open the source in context" in page


def test_page_says_when_the_sources_do_not_answer(state: AppState):
    searcher = state.get().searcher
    searcher.abstention = searcher.abstention.with_threshold(1.0)
    page = ask_html(state, "When did the ferry stop crossing the river?", 2, [])
    assert "The sources don&#x27;t answer this" in page or "The sources don't answer this" in page
    assert "Not an answer" in page and "not-answer" in page


def test_the_page_and_the_api_ask_at_the_chosen_operating_point(state: AppState):
    from dataclasses import replace

    from rag.web.state import ask_json

    searcher = state.get().searcher
    searcher.abstention = replace(searcher.abstention.with_threshold(0.0), strict_threshold=1.0)
    question = "When did the ferry stop crossing the river?"
    assert "don&#x27;t answer" not in ask_html(state, question, 2, [], "lenient")
    strict = ask_html(state, question, 2, [], "strict")
    assert "The sources don&#x27;t answer this" in strict or "The sources don't answer this" in strict
    assert ask_json(state, question, 2, "strict")["abstain"] == "strict"
    assert ask_json(state, question, 2)["answered"] is True
    assert "abstain must be one of" in ask_html(state, question, 2, [], "maybe")


def test_the_banner_counts_only_supporting_passages_and_the_rest_are_folded(state: AppState):
    import re

    searcher = state.get().searcher
    question = "When did the ferry stop crossing the river?"
    supports = sorted((h.support for h in searcher.ask(question, 4).hits), reverse=True)
    assert supports[0] > supports[-1]
    searcher.abstention = searcher.abstention.with_threshold((supports[0] + supports[1]) / 2 if supports[0] > supports[1]
                                                             else (supports[0] + supports[-1]) / 2)
    answer = searcher.ask(question, 4)
    page = ask_html(state, question, 4, [])
    n = answer.supporting
    assert 1 <= n < 4 and answer.to_json()["supporting"] == n
    sources = len({h.source for h in answer.hits if h.support >= answer.threshold})
    assert f"The sources answer this: {n} passage{'s' if n != 1 else ''} from {sources} source" in page
    head, folded = page.split('<details class="rag-more">', 1)
    assert head.count('class="rag-card"') == n and folded.count('class="rag-card') == 4 - n
    assert re.search(rf"<summary>{4 - n} more passages? that do(es)? not answer this</summary>", folded)


def test_unanswered_pages_fold_nothing(state: AppState):
    searcher = state.get().searcher
    searcher.abstention = searcher.abstention.with_threshold(1.0)
    page = ask_html(state, "When did the ferry stop crossing the river?", 3, [])
    assert "rag-more" not in page and page.count('class="rag-card not-answer"') == 3


def test_page_lists_the_missing_words(state: AppState):
    page = ask_html(state, "When did the ferry to Zanzibar stop?", 3, [])
    assert "Not found in these passages: Zanzibar" in page


@pytest.mark.parametrize("question, message", [("", "Type a question first"), ("   ", "Type a question first"), ("x" * 1001, "under 1000 characters")])
def test_bad_questions_get_a_message(state: AppState, question: str, message: str):
    page = ask_html(state, question, 5, [])
    assert message in page and "rag-card" not in page


def test_source_filter_in_page(state: AppState):
    page = ask_html(state, "snow", 5, ["volcano.txt"])
    assert "volcano.txt" in page and "notes/river.txt" not in page


def test_start_up_updates_a_stale_index_and_leaves_a_current_one(small_sources: Path, tmp_path: Path, fake_encoder, monkeypatch):
    from conftest import SMALL_CORPUS

    from rag.index.layout import current_generation
    from rag.web.startup import ensure_index

    monkeypatch.setenv("RAG_CACHE", "")  # no kept copy of the default model: the first build loads it
    logs: list[str] = []
    loads: list[str | None] = []

    def load(model: str | None):
        loads.append(model)
        return fake_encoder

    checked = lambda: loads.append("checked")  # noqa: E731  (the app starts Gradio's import then)
    assert ensure_index(small_sources, tmp_path / "index", logs.append, load, checked) is fake_encoder
    assert logs[0] == f"building the index in {tmp_path / 'index'} (full rebuild: there is no index yet)"
    assert loads == ["checked", None]  # before the build
    generation, logs[:], loads[:] = current_generation(tmp_path / "index"), [], []
    assert ensure_index(small_sources, tmp_path / "index", logs.append, load, checked) is None
    assert logs == [] and current_generation(tmp_path / "index") == generation  # up to date: left alone
    assert loads == ["checked"]  # ...and checked without loading the model
    loads[:] = [None]
    (small_sources / "volcano.txt").write_text(SMALL_CORPUS["volcano.txt"] + "More.\n")
    (small_sources / "new.txt").write_text("New article.")
    (small_sources / "bakery.md").unlink()
    (small_sources / "empty.txt").write_text("   \n")  # skipped by the build, so not a change
    ensure_index(small_sources, tmp_path / "index", logs.append, load)
    assert f"building the index in {tmp_path / 'index'} (updating: 1 new, 1 changed, 1 removed source file(s))" in logs
    assert loads == [None, fake_encoder.name]  # the index's model
    logs[:] = []
    assert ensure_index(small_sources, tmp_path / "index", logs.append, load) is None
    assert logs == ["warning: skipping empty.txt: it holds no article text"]


def test_an_up_to_date_start_up_parses_no_source(small_sources: Path, tmp_path: Path, fake_encoder, monkeypatch):
    import rag.sources.files as src
    from rag.errors import RagError
    from rag.index.layout import current_generation
    from rag.web.startup import ensure_index

    index = tmp_path / "index"
    build_index(small_sources, index, fake_encoder)
    (tmp_path / "outside.txt").write_text("Not a source.")
    (small_sources / "leak.txt").symlink_to(tmp_path / "outside.txt")
    parsed: list[str] = []
    real = src.parse_document
    monkeypatch.setattr(src, "parse_document", lambda source_id, *a, **k: parsed.append(source_id) or real(source_id, *a, **k))
    logs: list[str] = []
    assert ensure_index(small_sources, index, logs.append, lambda m: fake_encoder) is None
    assert parsed == [] and len(logs) == 1 and "leak.txt" in logs[0]  # the folder's warning, once
    volcano = small_sources / "volcano.txt"
    volcano.write_bytes(volcano.read_bytes().replace(b"snow", b"sand"))  # same size: only the bytes tell
    logs[:] = []
    assert ensure_index(small_sources, index, logs.append, lambda m: fake_encoder) is fake_encoder
    assert "volcano.txt" in parsed and sum("leak.txt" in line for line in logs) == 1
    assert "(updating: 0 new, 1 changed, 0 removed source file(s))" in " ".join(logs)
    generation, logs[:] = current_generation(index), []
    (small_sources / "bad.txt").write_bytes(b"caf\xe9 au lait")  # a bad file keeps the index as built
    assert ensure_index(small_sources, index, logs.append, lambda m: fake_encoder) is None
    assert any(line.startswith("error: bad.txt is not valid UTF-8") and "serving the index as built at" in line for line in logs)
    assert current_generation(index) == generation
    with pytest.raises(RagError, match="bad.txt is not valid UTF-8"):  # no index to keep serving
        ensure_index(small_sources, tmp_path / "new-index", logs.append, lambda m: fake_encoder)


def test_start_up_keeps_the_index_chunking(small_sources: Path, tmp_path: Path, fake_encoder):
    from rag.index.build import build_index
    from rag.index.layout import read_manifest
    from rag.types import ChunkingConfig
    from rag.web.startup import ensure_index

    custom = ChunkingConfig(max_tokens=12, overlap_sentences=0)
    build_index(small_sources, tmp_path / "index", fake_encoder, custom)
    logs: list[str] = []
    assert ensure_index(small_sources, tmp_path / "index", logs.append, lambda m: fake_encoder) is None
    (small_sources / "new.txt").write_text("A new article. It has two sentences.")
    assert ensure_index(small_sources, tmp_path / "index", logs.append, lambda m: fake_encoder) is fake_encoder
    assert read_manifest(tmp_path / "index").chunking == custom
    assert not any("full rebuild" in line for line in logs)


def statement(source: str, text: str, start: int, group: int, figures=(), also=()):
    from rag.answer.types import Statement

    return Statement(source, f"<i>{source}</i>", start, start + len(text), text, (start, start + len(text)), 0.4,
                     tuple(figures), group, tuple(also))


def test_what_each_source_says_panel():
    from rag.answer.figures import counts, shifted
    from rag.answer.types import Answer

    toll = "An estimated 77 people have been killed."
    zero = "No casualties were reported <script>x</script>."
    wire = "The airport was closed."
    answer = Answer("q", True, (hit("a"),), 0.5, 0.1, (), (
        statement("a.txt", toll, 5, 0, shifted(counts(toll), 5)),
        statement("b.txt", zero, 0, 1, shifted(counts(zero), 0)),
        statement("c.txt", wire, 0, 2, also=("d.txt",)),
        statement("d.txt", wire, 3, 2, also=("c.txt",)),
    ), True)
    page = render_answer(answer, {})
    assert "What each source says" in page and "The sources give different figures." in page
    assert '<mark class="rag-figure">An estimated 77</mark>' in page and '<mark class="rag-figure">No casualties</mark>' in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page and "<i>" not in page
    assert page.count('class="rag-statement"') == 3  # c and d say the same thing: one row
    assert "Also reported by &lt;i&gt;d.txt&lt;/i&gt;" in page and "characters 3–26" in page  # d keeps its own citation
    assert page.index("rag-quote") < page.index("What each source says") < page.index("rag-card")


def test_quote_is_the_best_supported_sentence_verbatim():
    text = "First sentence. The supporting one."
    best = hit(text, 0, (16, len(text)), support=0.9)
    page = render_answer(Answer("q", True, (best,), 0.9, 0.1), {})
    assert '<blockquote class="rag-quote"><q>The supporting one.</q>' in page and "characters 16–35" in page
    assert "rag-quote" not in render_answer(Answer("q", False, (best,), 0.9, 0.95), {})  # not an answer: no quote


def test_import_in_background_loads_the_module_and_leaves_failures_to_the_caller(tmp_path, monkeypatch):
    import importlib
    import sys
    import threading

    (tmp_path / "rag_probe_module.py").write_text("import threading\nLOADED_ON = threading.current_thread().name\n")
    (tmp_path / "rag_broken_module.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hooked: list[object] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    for name in ("rag_probe_module", "rag_broken_module"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    from rag.web.ui import import_in_background

    loading = import_in_background("rag_probe_module")
    loading.join(30)
    assert not loading.is_alive()
    assert sys.modules["rag_probe_module"].LOADED_ON == loading.name != threading.current_thread().name
    broken = import_in_background("rag_broken_module")
    broken.join(30)
    assert hooked == []  # nothing raised on the thread, so no traceback printed
    with pytest.raises(ImportError, match="broken on purpose"):
        importlib.import_module("rag_broken_module")


def test_no_digit_inside_markup_or_code_is_marked_on_the_page():
    from rag.answer.figures import counts
    from rag.web.page import marked_figures

    text = 'Three people died. <img src=x onerror="window.__pwned=1"> See https://a.example/2 and 4 more.'
    html = marked_figures(text, 100, [replace_start(f, 100) for f in counts(text)])
    assert html.count('<mark class="rag-figure">') == 2
    assert '<mark class="rag-figure">Three</mark>' in html and '<mark class="rag-figure">4</mark>' in html
    assert "__pwned=1" in html.replace("&quot;", '"') and "a.example/2" in html


def replace_start(figure, offset: int):  # noqa: ANN001, ANN201 (a Figure at `offset` in its file)
    from dataclasses import replace

    return replace(figure, start=figure.start + offset, end=figure.end + offset)
