"""Shared fixtures: inline corpora, the fake encoder, and the real model loaded once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import settings

# property tests check what is computed, never how fast: no per-example deadline (a loaded
# 2-core machine once took 272 ms for an example the default 200 ms deadline refused)
settings.register_profile("rag", deadline=None)
settings.load_profile("rag")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "RAG_CACHE" not in os.environ:  # kept model copies live with this test session, never in $HOME
    import tempfile

    os.environ["RAG_CACHE"] = tempfile.mkdtemp(prefix="rag-cache-")

from fakes import HashEncoder

SMALL_CORPUS = {
    "volcano.txt": (
        "= Mount Example =\n\n"
        "Mount Example is a volcano in the north of the island. It last erupted in 1902.\n"
        "The eruption destroyed the harbour town. About 3,000 people lived there.\n\n"
        "==Climate==\n"
        "The summit is covered in snow for six months of the year. Rain falls mostly in spring.\n"
    ),
    "bakery.md": (
        "# The Old Bakery\n\n"
        "The old bakery opened in 1850 on Mill Street. Its ovens burned wood until 1921.\n\n"
        "Photo credit, Town Archive\n\n"
        "Bread was delivered by horse cart. The bakery closed when the mill stopped turning.\n"
    ),
    "notes/river.txt": (
        "The river floods every spring when the snow melts. Farmers built dikes along its banks.\n"
        "Also read: our guide to the valley\n"
        "A ferry crossed the river until the bridge opened in 1968.\n"
    ),
}


def write_corpus(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def small_sources(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "sources", SMALL_CORPUS)


@pytest.fixture
def fake_encoder() -> HashEncoder:
    return HashEncoder()


@pytest.fixture(scope="session")
def real_encoder():
    from rag.encoding.model import SentenceTransformerEncoder

    return SentenceTransformerEncoder()


def served_searcher(root: Path):
    """A Searcher on the index in `root` with the encoder `rag ask` uses (its own copy of the model)."""
    from rag.answer.searcher import Searcher
    from rag.encoding.choice import question_encoder
    from rag.index.reading import open_index

    index = open_index(root)
    return Searcher(index, question_encoder(index.path, index.manifest.model))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Path:
    from rag.index.build import build_index

    root = tmp_path_factory.mktemp("seed-index") / "index"
    build_index(SEEDS, root, real_encoder)
    return root


# -- rag in real processes (the crash tests kill them) ------------------------------------


def rag_process(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m rag ARGS` from this checkout, its stdout and stderr piped as text."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "rag", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(stream, needle: str, timeout: float = 300) -> list[str]:
    """Read `stream` on a thread until a line holds `needle` (fails after `timeout` s)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if needle in line:
                done.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), "".join(lines)
    return lines
