"""A Milvus rebuild never takes the serving index away (Milvus Lite, a real engine): a full build
fills a new family of collections beside the live one and switches readers with one write; a
build stopped at any of its checkpoints leaves the old or the new index answering, never
neither and never a mix; the next build leaves exactly one family."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import rag_process, wait_for, write_corpus
from fakes import HashEncoder

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

import rag.index.milvus.build as milvus_build  # noqa: E402
from rag.api import OpenIndex  # noqa: E402
from rag.errors import GenerationGone  # noqa: E402
from rag.index.milvus.build import read_state  # noqa: E402
from rag.index.milvus.client import client_for, release  # noqa: E402
from rag.index.milvus.families import Family, families_present, read_live  # noqa: E402
from rag.locations import Location, build_at, location, open_searcher  # noqa: E402
from rag.sources.files import load_documents  # noqa: E402
from rag.types import ChunkingConfig  # noqa: E402

FULL_POINTS = ["chunked", "encoded", "created", "inserting", "writing", "manifest", "flushed", "switched", "cleaning"]
UPDATE_POINTS = ["chunked", "encoded", "inserting", "writing", "manifest", "flushed", "switched", "cleaning"]
AFTER_SWITCH = {"switched", "cleaning"}
QUESTION = "When did the gamma council meet?"


def article(topic: str, version: int, parts: int = 6) -> str:
    return "\n\n".join(
        f"The {topic} report, part {i} of version {version}, says the {topic} council met on day {i}. "
        f"Members of the {topic} council voted {i} times. The {topic} minutes were filed in box {i}."
        for i in range(parts)
    )


def corpus(version: int) -> dict[str, str]:
    return {"alpha.txt": article("alpha", 1, 8), "beta.txt": article("beta", 1), "gamma.txt": article("gamma", version)}


def where_at(tmp: Path) -> Location:
    return location("index", f"milvus:{tmp / 'archive.db'}", "rag")


def build(where: Location, sources: Path, encoder, **kw):
    return build_at(where, sources, encoder, load_documents(sources), ChunkingConfig(max_tokens=40), **kw)


def exact(answer, texts: dict[str, str]) -> bool:
    return all(texts[h.source][h.start : h.end] == h.text for h in answer.hits) and all(
        texts[s.source][s.start : s.end] == s.text for s in answer.by_source)


def collections(where: Location) -> list[str]:
    return sorted(client_for(where.milvus).list_collections())


class Stop(Exception):
    """A build stopped at a checkpoint, as a crash would stop it (the process lives on)."""


# -- in one process: the layout, readers of a dropped family, builds stopped at every point ------


def test_a_full_rebuild_writes_a_new_family_and_leaves_only_it(tmp_path: Path) -> None:
    encoder, where = HashEncoder(), where_at(tmp_path)
    sources = write_corpus(tmp_path / "sources", corpus(1))
    build(where, sources, encoder)
    first = read_live(client_for(where.milvus), "rag")
    assert first == (Family("rag", 1), 1)
    assert collections(where) == ["rag__live", "rag__meta__g1", "rag__passages__g1", "rag__sentences__g1"]
    (sources / "gamma.txt").write_text(article("gamma", 2))
    build(where, sources, encoder)  # an update stays in the live family
    assert read_live(client_for(where.milvus), "rag") == (Family("rag", 1), 2)
    build(where, sources, encoder, full=True)
    assert read_live(client_for(where.milvus), "rag") == (Family("rag", 3), 3)
    assert collections(where) == ["rag__live", "rag__meta__g3", "rag__passages__g3", "rag__sentences__g3"]
    assert "version 2" in open_searcher(where, encoder=encoder).ask(QUESTION, 3).hits[0].text


def test_a_reader_of_a_dropped_family_is_told_and_reopens_the_live_one(tmp_path: Path, monkeypatch) -> None:
    encoder, where = HashEncoder(), where_at(tmp_path)
    sources = write_corpus(tmp_path / "sources", corpus(1))
    build(where, sources, encoder)
    monkeypatch.setattr(milvus_build, "question_encoder_for", lambda index: encoder)
    held = OpenIndex(where)
    stale = open_searcher(where, encoder=encoder)
    (sources / "gamma.txt").write_text(article("gamma", 2))
    build(where, sources, encoder, full=True)
    with pytest.raises(GenerationGone, match="ask again"):
        stale.ask(QUESTION, 3)
    answer = held.ask(QUESTION, 3)  # the API reopens once and answers from the new family only
    assert answer.hits and all("version 2" in h.text for h in answer.hits if h.source == "gamma.txt")
    assert held.manifest.sources["gamma.txt"].sha256 == read_state(where.milvus)[2].sources["gamma.txt"].sha256


@pytest.mark.parametrize("full, points", [(True, FULL_POINTS), (False, UPDATE_POINTS)], ids=["full", "update"])
def test_a_build_stopped_at_every_point_leaves_one_index_answering(tmp_path: Path, monkeypatch, full, points) -> None:
    encoder, where = HashEncoder(), where_at(tmp_path)
    sources = write_corpus(tmp_path / "sources", corpus(0))
    build(where, sources, encoder)
    texts = corpus(0)
    for version, point in enumerate(points, start=1):
        before = open_searcher(where, encoder=encoder).ask(QUESTION, 5)
        old_texts, texts = texts, corpus(version)
        (sources / "gamma.txt").write_text(texts["gamma.txt"])

        def stop_at(name: str, point: str = point) -> None:
            if name == point:
                raise Stop(point)

        monkeypatch.setattr("rag.index.milvus.build.checkpoint", stop_at)
        monkeypatch.setattr("rag.index.milvus.store.checkpoint", stop_at)
        with pytest.raises(Stop):
            build(where, sources, encoder, full=full)
        monkeypatch.undo()
        after = open_searcher(where, encoder=encoder).ask(QUESTION, 5)
        if point in AFTER_SWITCH:
            assert exact(after, texts) and any(f"version {version}" in h.text for h in after.hits), point
        else:
            assert exact(after, old_texts), point
            assert [(h.source, h.start, h.end, h.text) for h in after.hits] == \
                   [(h.source, h.start, h.end, h.text) for h in before.hits], point
            texts = old_texts  # what the index still holds
    report = build(where, sources, encoder)
    assert len(families_present(client_for(where.milvus), "rag")) == 1, collections(where)
    store, gen, manifest = read_state(where.milvus)
    rows = store.client.query(store.passages_name, filter="id >= 0", output_fields=["id", "gen"])
    assert len(rows) == manifest.passages and all(r["gen"] <= gen for r in rows)
    assert report.passages == manifest.passages


def test_readers_in_a_loop_during_full_rebuilds_get_exact_answers_from_one_generation(tmp_path: Path, monkeypatch) -> None:
    from rag.web.startup import open_backend_at
    from rag.web.state import AppState, ask_json

    encoder, where = HashEncoder(), where_at(tmp_path)
    sources = write_corpus(tmp_path / "sources", corpus(0))
    build(where, sources, encoder)
    versions = {0: corpus(0)["gamma.txt"]}
    state = AppState(lambda: open_backend_at(where, encoder), lambda: None)  # no watcher: only the reopen helps
    stop, errors, answers = threading.Event(), [], []

    def read() -> None:
        while not stop.is_set():
            try:
                answers.append(ask_json(state, QUESTION, 5))
            except Exception as exc:  # noqa: BLE001 (every failure is counted)
                errors.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for version in (1, 2, 3):
            versions[version] = article("gamma", version)
            (sources / "gamma.txt").write_text(versions[version])
            build(where, sources, encoder, full=True)
            deadline = time.monotonic() + 60
            while len(answers) < 5 * version and time.monotonic() < deadline:  # readers see each generation
                time.sleep(0.01)
    finally:
        stop.set()
        for t in readers:
            t.join(60)
    assert errors == []
    seen = set()
    for answer in answers:
        gamma = [h for h in answer["hits"] if h["source"] == "gamma.txt"]
        assert gamma
        version = {v for v, text in versions.items() if all(text[h["start"] : h["end"]] == h["text"] for h in gamma)}
        assert len(version) == 1, answer  # exact spans of exactly one version of the file
        (v,) = version
        assert all(f"version {v}" in h["text"] for h in gamma)
        seen.add(v)
    assert len(seen) >= 2  # the loop really ran across rebuilds


def test_an_index_from_before_families_is_updated_in_place_and_replaced_by_a_full_build(tmp_path: Path, monkeypatch) -> None:
    encoder, where = HashEncoder(), where_at(tmp_path)
    sources = write_corpus(tmp_path / "sources", corpus(0))
    monkeypatch.setattr(milvus_build, "Family", lambda collection, number: Family(collection, None))
    build(where, sources, encoder)  # the layout older releases wrote: rag, rag_sentences, rag_meta
    monkeypatch.undo()
    assert collections(where) == ["rag", "rag_meta", "rag_sentences"]
    assert read_live(client_for(where.milvus), "rag") == (Family("rag", None), 1)
    (sources / "gamma.txt").write_text(article("gamma", 1))
    build(where, sources, encoder)
    assert collections(where) == ["rag", "rag_meta", "rag_sentences"]
    assert "version 1" in open_searcher(where, encoder=encoder).ask(QUESTION, 3).hits[0].text
    build(where, sources, encoder, full=True)
    assert collections(where) == ["rag__live", "rag__meta__g3", "rag__passages__g3", "rag__sentences__g3"]
    assert "version 1" in open_searcher(where, encoder=encoder).ask(QUESTION, 3).hits[0].text


# -- real processes, the real model: kill -9 at every checkpoint, full builds and updates ---------


def ask(store: str) -> dict:
    proc = rag_process("ask", QUESTION, "--store", store, "--json", "-k", "5")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.mark.model
def test_kill_9_at_every_checkpoint_leaves_the_old_or_the_new_index_answering(tmp_path: Path, real_encoder) -> None:
    sources = write_corpus(tmp_path / "sources", corpus(0))
    store = f"milvus:{tmp_path / 'archive.db'}"
    first = rag_process("index", "--sources", str(sources), "--store", store, "--max-tokens", "40", "--quiet")
    assert first.wait(600) == 0, first.stderr.read()
    version, texts = 0, corpus(0)["gamma.txt"]
    for full, points in ((True, FULL_POINTS), (False, UPDATE_POINTS)):
        for point in points:
            before = ask(store)
            version += 1
            new = article("gamma", version)
            (sources / "gamma.txt").write_text(new)
            proc = rag_process("index", "--sources", str(sources), "--store", store, "--quiet",
                               *(["--full"] if full else []), env_extra={"RAG_PAUSE_AT": point})
            wait_for(proc.stderr, f"paused at {point}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            after = ask(store)
            gamma = [h for h in after["hits"] if h["source"] == "gamma.txt"]
            label = f"{'full' if full else 'update'} killed at {point}"
            if point in AFTER_SWITCH:
                assert gamma and all(new[h["start"] : h["end"]] == h["text"] for h in gamma), label
                texts = new
            else:
                assert after["changed_sources"] == ["gamma.txt"], label  # the file was edited since that build
                assert {**after, "changed_sources": []} == {**before, "changed_sources": []}, label  # the old answer
                assert all(texts[h["start"] : h["end"]] == h["text"] for h in gamma), label
    final = rag_process("index", "--sources", str(sources), "--store", store, "--quiet")
    assert final.wait(600) == 0, final.stderr.read()
    where = location("index", store, "rag")
    try:
        names = collections(where)
        assert len(families_present(client_for(where.milvus), "rag")) == 1, names
        assert len(names) == 4, names  # one family's three collections and the pointer
    finally:
        release(where.milvus)
    result = ask(store)
    assert any(f"version {version}" in h["text"] for h in result["hits"])
