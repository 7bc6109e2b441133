"""Stage 4, vectors -> index/: the folder format, and what a folder holds.

Layout of an index folder:

    CURRENT                 name of the live generation, replaced atomically
    .lock                   held (flock) by the one process writing the index
    gen-<time>-<rand>/      one complete, self-contained generation
        manifest.json       how, from what and with what it was built
        passages.npy, sentence_spans.npy, passage_strings.json
                            the passages as columns, ascending id (rag.index.passages)
        sources.jsonl       the text of every source as indexed
        vectors.npy         float32 unit passage vectors, one row per passage
        sentence_vectors.npy float32 unit vectors of each passage's sentences
        sentence_terms.npy, sentence_term_offsets.npy
                            each sentence's BM25 term ids (int32, CSR-style offsets)
        dense.faiss         FAISS inner-product index over vectors, keyed by id
        bm25/               bm25s index over the same passages (JSON + .npy)
        bm25/term_max.npy   each term's best score in any passage (BM25 normalisation)
        onnx/               the model's verified ONNX copy: model.onnx, tokenizer.json,
                            config.json (absent when the model cannot be copied exactly)

Arrays are saved with allow_pickle=False; nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.types import Manifest, field_of

FORMAT_VERSION = 4  # 2: onnx/ (a verified ONNX copy of the model); 3: sentence term lists, abstention model;
# 4: columnar passages (passages.npy, sentence_spans.npy, passage_strings.json), precision
SENTENCE_TERMS = "sentence_terms.npy"
SENTENCE_TERM_OFFSETS = "sentence_term_offsets.npy"

CURRENT = "CURRENT"


def check_index_path(root: Path) -> None:
    """An index path must be a folder (or not exist yet)."""
    if root.exists() and not root.is_dir():
        raise RagError(f"--index '{root}' is a file, not an index folder; give a folder (it is created if missing)")


def current_generation(root: Path) -> Path | None:
    """The live generation's folder, or None when `root` holds no complete index."""
    check_index_path(root)
    try:
        name = (root / CURRENT).read_text("utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError):
        raise RagError(f"the index in '{root}' is damaged ({CURRENT} is unreadable); rebuild it with: rag index --full") from None
    if not name or "/" in name or name.startswith("."):
        raise RagError(f"the index in '{root}' is damaged ({CURRENT} names no generation); rebuild it with: rag index --full")
    path = root / name
    return path if path.is_dir() else None


@dataclass(frozen=True)
class IndexState:
    """What an index folder holds, read once (CURRENT, then that generation's manifest)."""

    root: Path
    generation: Path | None
    manifest: Manifest | None  # set when the index can be used as it is
    problem: str | None = None  # why it cannot: "none", "older", "newer", "damaged"
    message: str = ""  # a one-line explanation saying what to do
    settings: dict[str, Any] | None = None  # model, chunking and next_id recovered from an older format


def inspect_index(root: Path) -> IndexState:
    """The state of the index in `root`, from one reading of CURRENT."""
    gen = current_generation(root)
    if gen is None:
        return IndexState(root, None, None, "none", f"no index in '{root}'; build it with: rag index --index {root}")
    rebuild = "rebuild it with: rag index --full (this replaces it)"
    try:
        data = json.loads((gen / "manifest.json").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return IndexState(root, gen, None, "damaged", f"the index in '{root}' is damaged (manifest.json is unreadable); {rebuild}")
    version = data.get("format_version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        return IndexState(root, gen, None, "damaged", f"the index in '{root}' is damaged (manifest.json has no format_version); {rebuild}")
    if version > FORMAT_VERSION:
        return IndexState(root, gen, None, "newer",
                          f"the index in '{root}' was written by a newer version of rag (format {version}; this one reads "
                          f"{FORMAT_VERSION}); upgrade rag, or replace the index with: rag index --full")
    if version < FORMAT_VERSION:
        settings = None
        try:
            settings = {"model": field_of(data, "model", "str"), "chunking": field_of(data, "chunking", "dict"),
                        "next_id": field_of(data, "next_id", "int", 0)}
        except ValueError:
            pass
        return IndexState(root, gen, None, "older",
                          f"the index in '{root}' has format {version}, this version reads {FORMAT_VERSION}; "
                          "rag index and the app rebuild it with its model and chunking, or run: rag index --full", settings)
    try:
        return IndexState(root, gen, Manifest.from_json(data))
    except (KeyError, TypeError, ValueError) as exc:
        return IndexState(root, gen, None, "damaged", f"the index in '{root}' is damaged (manifest.json: {exc}); {rebuild}")


def read_manifest(root: Path) -> Manifest:
    """The current generation's manifest, or a one-line error that says to build or rebuild."""
    state = inspect_index(root)
    if state.manifest is None:
        raise RagError(state.message)
    return state.manifest
