"""The Milvus store against a real engine (Milvus Lite, started by the tests), beside the folder
store: the same end-to-end checks run on both, and the Milvus answers must equal the folder's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS, SMALL_CORPUS, write_corpus
from fakes import HashEncoder

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from rag.errors import RagError  # noqa: E402
from rag.index.milvus.build import read_state  # noqa: E402
from rag.index.milvus.client import parse_store  # noqa: E402
from rag.locations import Location, build_at, location, open_searcher  # noqa: E402
from rag.sources.files import load_documents  # noqa: E402
from rag.types import ChunkingConfig  # noqa: E402

QUESTIONS = [json.loads(line)["question"] for name in ("dev.jsonl", "test.jsonl")
             for line in (ROOT / "eval" / "seeds" / name).read_text("utf-8").splitlines() if line.strip()]


def citations(answer) -> list[tuple]:
    return [(h.source, h.start, h.end, h.text, h.highlight, h.passage_id) for h in answer.hits]


def statements(answer) -> list[tuple]:
    return [(s.source, s.start, s.end, s.text, s.group) for s in answer.by_source]


def _where(kind: str, tmp: Path) -> Location:
    return location(tmp / "index") if kind == "folder" else location("index", f"milvus:{tmp / 'archive.db'}", "rag")


def _build(where: Location, sources: Path, encoder, **kw):
    return build_at(where, sources, encoder, load_documents(sources), ChunkingConfig(), **kw)


# -- the seeds on both stores, with the real model's copy ----------------------------------


@pytest.fixture(scope="module")
def seed_pair(tmp_path_factory: pytest.TempPathFactory, real_encoder):
    tmp = tmp_path_factory.mktemp("pair")
    folder, milvus = _where("folder", tmp), _where("milvus", tmp)
    _build(folder, SEEDS, real_encoder)
    _build(milvus, SEEDS, real_encoder)
    return open_searcher(folder), open_searcher(milvus)


@pytest.mark.model
def test_milvus_answers_equal_the_folder_store_on_every_seed_question(seed_pair) -> None:
    folder, milvus = seed_pair
    assert milvus.index.manifest.passages == folder.index.manifest.passages
    for q in QUESTIONS:
        a, b = milvus.ask(q, 5), folder.ask(q, 5)
        assert citations(a) == citations(b), q
        assert a.answered == b.answered, q
        assert a.missing == b.missing, q
        assert statements(a) == statements(b), q
        assert a.support == pytest.approx(b.support, abs=1e-3), q


@pytest.mark.model
def test_milvus_citations_are_exact_spans_of_the_stored_texts(seed_pair) -> None:
    _, milvus = seed_pair
    for q in QUESTIONS[:20]:
        for hit in milvus.ask(q, 5).hits:
            text = milvus.index.texts[hit.source]
            assert text[hit.start : hit.end] == hit.text
            assert text[hit.highlight[0] : hit.highlight[1]] in hit.text
            assert (SEEDS / hit.source).read_text("utf-8")[hit.start : hit.end] == hit.text


@pytest.mark.model
def test_a_search_limited_to_one_source_agrees(seed_pair) -> None:
    folder, milvus = seed_pair
    source = sorted(milvus.index.source_names())[2]
    q = "How many people were killed?"
    a, b = milvus.ask(q, 5, [source]), folder.ask(q, 5, [source])
    assert {h.source for h in a.hits} == {source}
    assert citations(a) == citations(b)
    with pytest.raises(RagError, match="unknown source"):
        milvus.ask(q, 5, ["nope.txt"])


@pytest.mark.model
def test_another_process_opens_the_collection_with_its_own_copy_of_the_model(real_encoder, tmp_path: Path) -> None:
    from rag.index.milvus.client import release

    where = _where("milvus", tmp_path)
    _build(where, SEEDS, real_encoder)
    q = "Who claimed responsibility for the attacks?"
    expected = open_searcher(where).ask(q).to_json()
    code = f"import json, sys, rag; idx = rag.open(sys.argv[1]); print(json.dumps(idx.ask({q!r}).to_json()))"
    env = {"RAG_CACHE": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    args = [sys.executable, "-c", code, f"milvus:{where.milvus.uri}"]
    busy = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert busy.returncode == 1 and "another process has it open" in busy.stderr  # Milvus Lite: one process per file
    release(where.milvus)
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
    assert (tmp_path / "empty-cache" / "milvus-onnx").is_dir()  # fetched from the collection, not exported


# -- the same end-to-end checks on both stores, with the fake encoder ----------------------


@pytest.fixture(params=["folder", "milvus"])
def store(request, tmp_path: Path) -> Location:
    return _where(request.param, tmp_path)


def test_add_edit_delete_show_in_answers(store: Location, tmp_path: Path) -> None:
    encoder = HashEncoder()
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    first = _build(store, sources, encoder)
    assert first.added == 3
    ask = lambda q: open_searcher(store, encoder=encoder).ask(q, 3)  # noqa: E731
    assert ask("When did the ferry cross the river?").hits[0].source == "notes/river.txt"

    (sources / "lighthouse.txt").write_text("The lighthouse keeper lit the lamp every night until 1975.\n", "utf-8")
    report = _build(store, sources, encoder)
    assert (report.added, report.changed, report.removed, report.embedded) == (1, 0, 0, 1)
    assert ask("Who lit the lamp of the lighthouse?").hits[0].source == "lighthouse.txt"

    (sources / "bakery.md").write_text("# The Old Bakery\n\nThe bakery now sells pretzels baked in a solar oven.\n", "utf-8")
    report = _build(store, sources, encoder)
    assert (report.added, report.changed, report.removed) == (0, 1, 0)
    hit = ask("What does the bakery sell baked in a solar oven?").hits[0]
    assert hit.source == "bakery.md" and "pretzels" in hit.text
    assert all("horse cart" not in h.text for h in ask("Bread delivered by horse cart").hits)

    (sources / "notes" / "river.txt").unlink()
    report = _build(store, sources, encoder)
    assert report.removed == 1
    searcher = open_searcher(store, encoder=encoder)
    assert all(h.source != "notes/river.txt" for h in searcher.ask("ferry river bridge", 5).hits)
    assert set(searcher.index.source_names()) == {"volcano.txt", "bakery.md", "lighthouse.txt"}
    assert sum(1 for _ in searcher.index.all_passages()) == searcher.index.manifest.passages
    assert _build(store, sources, encoder).up_to_date


def test_the_app_start_leaves_an_up_to_date_collection_and_keeps_it_on_a_bad_source(tmp_path: Path, monkeypatch) -> None:
    import rag.locations
    import rag.sources.files as src
    from rag.web.startup import ensure_at

    where = _where("milvus", tmp_path)
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    encoder = HashEncoder()
    _build(where, sources, encoder)
    (tmp_path / "outside.txt").write_text("Not a source.")
    (sources / "leak.txt").symlink_to(tmp_path / "outside.txt")
    monkeypatch.setattr(src, "parse_document", lambda *a, **k: pytest.fail("parsed a source"))
    monkeypatch.setattr(rag.locations, "encoder_for_build", lambda *a, **k: pytest.fail("built"))
    logs: list[str] = []
    ensure_at(sources, where, logs.append, lambda: logs.append("checked"))
    assert len(logs) == 2 and "leak.txt" in logs[0] and logs[1] == "checked"  # up to date: nothing parsed or built
    (sources / "bad.txt").write_bytes(b"caf\xe9 au lait")
    logs[:] = []
    monkeypatch.undo()
    monkeypatch.setattr(rag.locations, "encoder_for_build", lambda *a, **k: pytest.fail("built"))
    ensure_at(sources, where, logs.append)
    assert logs[-1].startswith("error: bad.txt is not valid UTF-8") and "serving the index as built at" in logs[-1]
    assert sum("leak.txt" in line for line in logs) == 1


def test_model_mismatch_is_refused_with_the_same_line(store: Location, tmp_path: Path) -> None:
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    _build(store, sources, HashEncoder("fake-a"))
    with pytest.raises(RagError) as refused:
        open_searcher(store, encoder=HashEncoder("fake-b"))
    assert str(refused.value) == ("the index was built with model 'fake-a' (dimension 64) but the model in use is "
                                  "'fake-b' (dimension 64); rebuild with: rag index --full --model fake-b")
    with pytest.raises(RagError, match="not 'other-model'"):
        open_searcher(store, model="other-model", encoder=HashEncoder("fake-a"))
    report = _build(store, sources, HashEncoder("fake-b"))
    assert report.full_reason == "the model changed from fake-a to fake-b"
    assert open_searcher(store, encoder=HashEncoder("fake-b")).index.manifest.model == "fake-b"


def test_an_off_topic_question_is_not_answered_and_its_words_are_missing(store: Location, tmp_path: Path) -> None:
    encoder = HashEncoder()
    _build(store, write_corpus(tmp_path / "sources", SMALL_CORPUS), encoder)
    answer = open_searcher(store, encoder=encoder).ask("Which quarterback won the Super Bowl?", 3)
    assert not answer.answered
    assert {"quarterback", "Super", "Bowl"} <= set(answer.missing)


# -- Milvus only: crash safety, the stored lexicon, bad options ----------------------------


def test_a_killed_update_is_invisible_and_cleaned_by_the_next_build(tmp_path: Path) -> None:
    from rag.types import Passage

    encoder = HashEncoder()
    where = _where("milvus", tmp_path)
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    _build(where, sources, encoder)
    store, gen, _ = read_state(where.milvus)
    before = open_searcher(where, encoder=encoder).ask("volcano eruption harbour", 3)
    text = "A volcano eruption destroyed the harbour of the volcano island."
    ghost = Passage(source="volcano.txt", start=0, end=len(text), text=text, context="", sentences=((0, len(text)),),
                    id=10_000, sentence_row=0)
    vec = encoder.encode_queries([text])
    store.insert(gen + 1, [ghost], {"volcano.txt": "f" * 64}, vec, [vec])  # a build killed before its commit
    after = open_searcher(where, encoder=encoder).ask("volcano eruption harbour", 3)
    assert citations(after) == citations(before)
    _build(where, sources, encoder)  # nothing changed: the leftover rows are still removed
    assert store.client.query(store.passages_name, filter="id == 10000", output_fields=["id"]) == []
    count = len(store.client.query(store.passages_name, filter="id >= 0", output_fields=["id"]))
    assert count == store.manifest_json(read_state(where.milvus)[1])["passages"]


def test_the_stored_lexicon_equals_bm25s(tmp_path: Path) -> None:
    from rag.index.reading import open_index

    encoder = HashEncoder()
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    _build(_where("folder", tmp_path), sources, encoder)
    _build(_where("milvus", tmp_path), sources, encoder)
    folder = open_index(tmp_path / "index").lexicon
    milvus = open_searcher(_where("milvus", tmp_path), encoder=encoder).index.lexicon
    assert folder.n_docs == milvus.n_docs
    common = [s for s in folder.vocab if s]
    assert set(common) == set(milvus.vocab)
    f = np.array([folder.vocab[s] for s in common])
    m = np.array([milvus.vocab[s] for s in common])
    assert np.array_equal(folder.df[f], milvus.df[m])
    assert np.allclose(folder.term_max[f], milvus.term_max[m], rtol=1e-5)


@pytest.mark.parametrize("spec, message", [
    ("milvus://nohost", "milvus://HOST:PORT"),
    ("milvus:archive.sqlite", "milvus:PATH.db"),
    ("postgres://x", "is not a store"),
])
def test_bad_store_options_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(RagError, match=re.escape(message)):
        parse_store(spec)
    with pytest.raises(RagError, match="--collection must be"):
        parse_store("milvus:a.db", "bad-name!")
    with pytest.raises(RagError, match="may not hold '__'"):
        parse_store("milvus:a.db", "rag__live")


def test_cli_store_options(tmp_path: Path) -> None:
    rag = [sys.executable, "-m", "rag"]
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    bad = subprocess.run(rag + ["ask", "x", "--store", "milvus://nohost"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    missing = subprocess.run(rag + ["ask", "x", "--store", f"milvus:{tmp_path / 'none.db'}"], capture_output=True,
                             text=True, cwd=tmp_path)
    assert missing.returncode == 1 and "no index in the Milvus collection 'rag'" in missing.stderr
    watch = subprocess.run(rag + ["index", "--sources", str(sources), "--store", "milvus:x.db", "--watch"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert watch.returncode == 1 and "--watch works with the --index folder" in watch.stderr


@pytest.mark.model
def test_cli_index_and_ask_json_agree_across_stores(tmp_path: Path) -> None:
    rag = [sys.executable, "-m", "rag"]
    sources = tmp_path / "seeds"
    shutil.copytree(SEEDS, sources)
    for extra in (["--index", "folder-index"], ["--store", "milvus:archive.db", "--collection", "news"]):
        done = subprocess.run(rag + ["index", "--sources", str(sources), "--quiet", *extra], capture_output=True,
                              text=True, cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr
    q = "What time did the attack on the gendarmerie school begin?"
    answers = [json.loads(subprocess.run(rag + ["ask", q, "--json", *extra], capture_output=True, text=True,
                                         cwd=tmp_path, timeout=300).stdout)
               for extra in (["--index", "folder-index"], ["--store", "milvus:archive.db", "--collection", "news"])]
    assert answers[0] == answers[1]


@pytest.mark.model
def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", readme, re.S)
    assert block, "the README's Python API example is missing"
    shutil.copytree(SEEDS, tmp_path / "seeds")
    done = subprocess.run([sys.executable, "-c", block.group(1)], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "answered: True" in done.stdout
