"""Incremental, atomic, crash-safe rebuilds; the lock; hot reload; --watch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, rag_process, served_searcher, wait_for, write_corpus
from fakes import HashEncoder

from rag.answer.searcher import Searcher
from rag.errors import RagError
from rag.index.build import build_index
from rag.index.layout import current_generation
from rag.index.locking import index_lock
from rag.index.reading import open_index
from rag.types import ChunkingConfig
from rag.web.startup import current_name, open_backend
from rag.web.state import AppState


def article(topic: str, n: int) -> str:
    return "\n\n".join(
        f"The {topic} report, part {i}, says the {topic} council met on day {i}. "
        f"Members of the {topic} council voted {i} times. The {topic} minutes were filed in box {i}."
        for i in range(n)
    )


CORPUS = {"alpha.txt": article("alpha", 12), "beta.txt": article("beta", 8), "gamma.txt": article("gamma", 8)}


@pytest.fixture
def setup(tmp_path: Path):
    sources = write_corpus(tmp_path / "sources", CORPUS)
    encoder = HashEncoder()
    config = ChunkingConfig(max_tokens=40)
    build_index(sources, tmp_path / "index", encoder, config)
    return sources, tmp_path / "index", encoder, config


def test_edit_add_delete_cycle(setup):
    sources, root, encoder, config = setup
    before = open_index(root)
    gamma_before = {p.id: p for p in before.passages if p.source == "gamma.txt"}
    encoded_before = encoder.passages_encoded

    text = (sources / "alpha.txt").read_text()
    (sources / "alpha.txt").write_text(text.replace("part 5, says", "part 5, now says, after a correction,"))
    (sources / "beta.txt").unlink()
    (sources / "delta.txt").write_text("The delta harbour opened a ferry line to the islands.")
    report = build_index(sources, root, encoder, config)
    after = open_index(root)

    assert (report.added, report.changed, report.removed, report.unchanged) == (1, 1, 1, 1)
    assert report.full_reason is None
    # only the edited passages of alpha and the new article were encoded
    assert 1 <= report.embedded == encoder.passages_encoded - encoded_before <= 4
    assert report.reused == len(after.passages) - report.embedded
    # the edit shows, offsets still exact
    alpha_text = (sources / "alpha.txt").read_text()
    assert any("now says, after a correction" in p.text for p in after.passages)
    for p in after.passages:
        assert {"alpha.txt": alpha_text, "gamma.txt": CORPUS["gamma.txt"]}.get(p.source, (sources / p.source).read_text())[p.start : p.end] == p.text
    # unchanged sources keep ids and vectors
    gamma_after = {p.id: p for p in after.passages if p.source == "gamma.txt"}
    assert gamma_after.keys() == gamma_before.keys()
    for pid in gamma_after:
        np.testing.assert_array_equal(after.vectors[after.rows(np.array([pid]))[0]], before.vectors[before.rows(np.array([pid]))[0]])
    # the deleted source is gone from the passages, FAISS and BM25
    beta_ids = [p.id for p in before.passages if p.source == "beta.txt"]
    assert not any(p.source == "beta.txt" for p in after.passages)
    assert after.dense.faiss().ntotal == len(after.passages)
    stored = after.dense.faiss().search(np.asarray(after.vectors), 1)[1].ravel()
    assert not set(stored.tolist()) & set(beta_ids)
    searcher = Searcher(after, encoder)
    assert "beta" not in searcher._vocab  # no passage contains the word any more
    hits = searcher.ask("beta council minutes", k=10).hits
    assert hits and all(h.source != "beta.txt" for h in hits)
    assert searcher.ask("delta harbour ferry islands", k=1).hits[0].source == "delta.txt"
    # FAISS answers like brute force after the update
    q = encoder.encode_queries(["alpha council correction"])
    scores, ids = after.dense.faiss().search(q, 5)
    brute = np.sort(np.asarray(after.vectors) @ q[0])[::-1][:5]
    np.testing.assert_allclose(scores[0], brute, atol=1e-5)
    # a deleted source never comes back
    generation = current_generation(root)
    again = build_index(sources, root, encoder, config)
    assert again.up_to_date and current_generation(root) == generation  # nothing new written
    assert again.embedded == 0 and not any(p.source == "beta.txt" for p in open_index(root).passages)


def test_new_ids_only_go_up(setup):
    sources, root, encoder, config = setup
    first = open_index(root)
    (sources / "gamma.txt").write_text(article("gamma", 9))
    build_index(sources, root, encoder, config)
    second = open_index(root)
    new = set(second.ids.tolist()) - set(first.ids.tolist())
    assert new and min(new) >= first.manifest.next_id


def test_model_change_rebuilds_everything(setup):
    sources, root, encoder, config = setup
    messages: list[str] = []
    other = HashEncoder(name="other-model", dimension=32)
    report = build_index(sources, root, other, config, log=messages.append)
    assert report.full_reason == "the model changed from fake-hash to other-model"
    assert messages == ["full rebuild: the model changed from fake-hash to other-model"]
    assert report.embedded == report.passages and open_index(root).manifest.dimension == 32


def test_chunking_change_rebuilds_everything(setup):
    sources, root, encoder, config = setup
    report = build_index(sources, root, encoder, ChunkingConfig(max_tokens=60))
    assert report.full_reason.startswith("the chunking settings changed")
    assert report.embedded == report.passages


def test_lock_refuses_a_second_writer(setup, tmp_path: Path):
    sources, root, encoder, config = setup
    before = current_generation(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from rag.index.locking import index_lock\n"
         f"with index_lock(Path({str(root)!r})):\n    print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RagError, match=f"another process is writing the index .*pid {holder.pid}"):
            build_index(sources, root, encoder, config)
        result = subprocess.run(
            [sys.executable, "-m", "rag", "index", "--sources", str(sources), "--index", str(root)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"pid {holder.pid}" in result.stderr.strip().splitlines()[-1]
    finally:
        holder.kill()
        holder.wait()
    assert current_generation(root) == before
    with index_lock(root), index_lock(root):  # re-entrant within one process
        build_index(sources, root, encoder, config)  # free again once the holder is gone


def test_app_switches_to_a_new_generation_between_requests(setup):
    sources, root, encoder, config = setup
    logs: list[str] = []
    state = AppState(lambda: open_backend(root, encoder), lambda: current_name(root), poll_seconds=0.05, log=logs.append)
    try:
        in_flight = state.get()
        (sources / "delta.txt").write_text("The delta harbour opened a ferry line to the islands.")
        build_index(sources, root, encoder, config)
        deadline = time.time() + 10
        while state.get().generation == in_flight.generation and time.time() < deadline:
            time.sleep(0.05)
        fresh = state.get()
        assert fresh.generation == current_generation(root).name and "delta.txt" in fresh.texts
        assert fresh.searcher.ask("delta harbour ferry", k=1).hits[0].source == "delta.txt"
        assert in_flight.searcher.ask("alpha council", k=2).hits  # the old one still answers
        assert "delta.txt" not in in_flight.texts
        assert any("switched to index generation" in m for m in logs)
    finally:
        state.close()


# --- processes: SIGKILL at every checkpoint of a build, and --watch --------------------------

POINTS = ["chunked", "encoded", "writing", "flushed", "renamed", "pointer", "switched"]


@pytest.mark.model
def test_sigkill_at_every_point_leaves_a_working_index(tmp_path: Path, real_encoder):
    sources = write_corpus(tmp_path / "sources", CORPUS)
    root = tmp_path / "index"
    build_index(sources, root, real_encoder)
    for point in POINTS:
        before = current_generation(root)
        (sources / "gamma.txt").write_text(article("gamma", 3 + POINTS.index(point)))
        proc = rag_process("index", "--sources", str(sources), "--index", str(root), "--full", env_extra={"RAG_PAUSE_AT": point})
        wait_for(proc.stderr, f"paused at {point}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        gen = current_generation(root)
        if point == "switched":
            assert gen != before  # the new generation had been made current
        else:
            assert gen == before  # killed before the switch: still the last complete one
        answer = served_searcher(root).ask("When did the alpha council meet?", k=3)
        assert answer.hits and all(h.text for h in answer.hits)
    leftovers = list(root.glob(".tmp-*"))
    assert leftovers and list(root.glob(".CURRENT.*"))  # the killed builds left temporary files behind...
    result = subprocess.run(
        [sys.executable, "-m", "rag", "index", "--sources", str(sources), "--index", str(root)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert not list(root.glob(".tmp-*")) and not list(root.glob(".CURRENT.*"))  # ...which the next build cleaned up
    assert len(list(root.glob("gen-*"))) <= 2
    index = open_index(root)
    assert {p.source for p in index.passages} == set(CORPUS)
    assert "part 7" in (root / current_generation(root).name / "sources.jsonl").read_text()


@pytest.mark.model
def test_watch_updates_the_index(tmp_path: Path):
    sources = write_corpus(tmp_path / "sources", CORPUS)
    root = tmp_path / "index"
    proc = rag_process("index", "--sources", str(sources), "--index", str(root), "--watch", "--debounce", "0.3")
    try:
        wait_for(proc.stderr, "watching")
        first = current_generation(root)
        (sources / "delta.txt").write_text("The delta harbour opened a ferry line to the islands.")
        (sources / ".draft.txt").write_text("A hidden draft, with a source suffix, about the delta ferry.")
        deadline = time.time() + 120
        while current_generation(root) == first and time.time() < deadline:
            time.sleep(0.2)
        second = current_generation(root)
        assert second != first
        time.sleep(0.5)
        index = open_index(root)
        assert "delta.txt" in index.manifest.sources and ".draft.txt" not in index.manifest.sources
        (sources / ".draft.txt").write_text("The hidden draft changed again.")  # hidden: no rebuild at all
        (sources / "notes.bak").write_text("not a source suffix")
        time.sleep(3)
        assert current_generation(root) == second
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
