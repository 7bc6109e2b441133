"""Readers never see a mix: CLI and app readers hammer an index while builds switch generations
and a calibration writes; and builds killed at random moments always leave an index that
answers, cleaned up by the next build."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, write_corpus

from rag.answer.searcher import Searcher
from rag.encoding.onnx import open_onnx_encoder
from rag.errors import RagError
from rag.evaluation.runner import EvalOptions, eval_jsonl
from rag.index.build import build_index
from rag.index.layout import CURRENT, current_generation
from rag.index.reading import open_index
from rag.web.startup import current_name, open_backend
from rag.web.state import AppState

pytestmark = pytest.mark.model
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def version(i: int) -> dict[str, str]:
    """Sources whose titles, lengths and offsets all change with the version number."""
    pad = "Note. " * i
    return {
        "harbour.txt": f"= Harbour report {i} =\n\n{pad}The harbour flooded in 1902 and {i + 2} boats sank. The ferry ran again in spring.\n",
        "mill.txt": f"= Mill history {i} =\n\n{pad}The mill closed in 1921. Bread was baked by {i + 3} families after that.\n",
    }


def consistent(hits: list[dict], versions: dict[int, dict[str, str]]) -> bool:
    """Whether some single version explains every hit's citation and title."""
    for files in versions.values():
        if all(h["source"] in files and files[h["source"]][h["start"] : h["end"]] == h["text"]
               and h["title"] == files[h["source"]].split(" =", 1)[0].lstrip("= ") for h in hits):
            return True
    return False


def test_readers_see_one_generation_while_builds_and_calibration_write(tmp_path: Path, real_encoder):
    sources, root = tmp_path / "sources", tmp_path / "index"
    versions = {0: version(0)}
    write_corpus(sources, versions[0])
    build_index(sources, root, real_encoder)
    encoder = open_onnx_encoder(current_generation(root), real_encoder.name)
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"id": "a", "question": "When did the harbour flood?", "answers": ["1902"]},
        {"id": "u", "question": "Who won the football cup?", "answerable": False}]))
    stop = threading.Event()
    problems: list[str] = []
    counts = {"cli": 0, "app": 0}

    def cli_reader() -> None:
        while not stop.is_set():
            out = subprocess.run([sys.executable, "-m", "rag", "ask", "When did the harbour flood and the mill close?",
                                  "--index", str(root), "--json", "-k", "4"], capture_output=True, text=True, env=ENV, timeout=120)
            if out.returncode != 0:
                problems.append(f"cli: {out.stderr.strip()}")
                continue
            hits = json.loads(out.stdout)["hits"]
            if not consistent(hits, dict(versions)):
                problems.append(f"cli mixed: {hits}")
            counts["cli"] += 1

    state = AppState(lambda: open_backend(root, encoder), lambda: current_name(root), poll_seconds=0.05)

    def app_reader() -> None:
        while not stop.is_set():
            backend = state.get()
            answer = backend.ask("How many boats sank in the harbour?", 4)
            hits = [h.to_json() for h in answer.hits]
            if not all(backend.texts[h["source"]][h["start"] : h["end"]] == h["text"] for h in hits) or not consistent(hits, dict(versions)):
                problems.append(f"app mixed: {hits}")
            counts["app"] += 1
            time.sleep(0.01)

    readers = [threading.Thread(target=cli_reader) for _ in range(2)] + [threading.Thread(target=app_reader)]
    for t in readers:
        t.start()
    try:
        for i in range(1, 7):
            versions[i] = version(i)
            write_corpus(sources, versions[i])
            build_index(sources, root, encoder)
            if i == 3:
                searcher = Searcher(open_index(root), encoder)
                eval_jsonl(questions, root, searcher, EvalOptions(k=3, modes=("hybrid",), calibrate=True))
            time.sleep(0.3)
    finally:
        stop.set()
        for t in readers:
            t.join(120)
        state.close()
    assert not problems, problems[:3]
    assert counts["cli"] >= 4 and counts["app"] >= 20
    assert open_index(root).manifest.abstention.calibrated  # the calibration was kept by later builds


def test_calibration_refuses_when_the_index_switched_under_it(tmp_path: Path, real_encoder):
    sources, root = tmp_path / "sources", tmp_path / "index"
    write_corpus(sources, version(0))
    build_index(sources, root, real_encoder)
    encoder = open_onnx_encoder(current_generation(root), real_encoder.name)
    searcher = Searcher(open_index(root), encoder)  # opened before the next build
    write_corpus(sources, version(1))
    build_index(sources, root, encoder)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "When did the mill close?", "answers": ["1921"]}) + "\n"
                         + json.dumps({"id": "u", "question": "Who won the cup?", "answerable": False}) + "\n")
    before = current_generation(root)
    with pytest.raises(RagError, match="changed while it was being calibrated"):
        eval_jsonl(questions, root, searcher, EvalOptions(k=3, modes=("hybrid",), calibrate=True))
    assert current_generation(root) == before


KILLER = """
import sys
from pathlib import Path
from rag.index.build import build_index
from rag.encoding.onnx import open_onnx_encoder
sources, root, gen = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
encoder = open_onnx_encoder(gen, "sentence-transformers/all-MiniLM-L6-v2")
print("go", flush=True)
while True:
    build_index(sources, root, encoder, full=True)
"""


def test_builds_killed_at_random_moments_leave_an_index_that_answers(tmp_path: Path, real_encoder):
    sources, root = tmp_path / "sources", tmp_path / "index"
    write_corpus(sources, {**version(0), **{f"extra{i}.txt": f"Extra article {i} about river barges and ferries. " * 30 for i in range(6)}})
    build_index(sources, root, real_encoder)
    onnx_gen = tmp_path / "model"  # the encoder's copy must outlive the generations the builds remove
    shutil.copytree(current_generation(root) / "onnx", onnx_gen / "onnx")
    rng = random.Random(7)
    for _ in range(20):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(sources), str(root), str(onnx_gen)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        assert proc.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        index = open_index(root)  # the last complete generation, whatever was interrupted
        gen = index.path
        assert (root / CURRENT).read_text().strip() == gen.name
        texts = {p.source for p in index.passages}
        assert "harbour.txt" in texts
    encoder = open_onnx_encoder(onnx_gen, real_encoder.name)
    assert Searcher(open_index(root), encoder).ask("When did the harbour flood?", 3).answered
    build_index(sources, root, encoder, full=True)  # the next build cleans up what the killed ones left
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".tmp") or p.name.startswith(".CURRENT.")) == []
    assert len([p for p in root.iterdir() if p.name.startswith("gen-")]) <= 2
