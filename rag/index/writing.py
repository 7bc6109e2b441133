"""Write a new index generation beside the live one and switch to it atomically.

A generation is written under a temporary name, flushed to disk and renamed, then CURRENT is
switched with os.replace, so a reader sees either the old index or the new one, never a mix.
Old generations and what a killed build left are removed by the next build, under the lock.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoding import ONNX_DIR
from rag.errors import RagError
from rag.index.dense import build_dense
from rag.index.layout import CURRENT, SENTENCE_TERM_OFFSETS, SENTENCE_TERMS, current_generation
from rag.index.lexical import build_bm25, sentence_terms
from rag.index.locking import _fsync_path, _fsync_tree, checkpoint, index_lock
from rag.index.passages import PassageTable
from rag.types import Manifest, Passage


def write_index(
    root: Path,
    manifest: Manifest,
    passages: Sequence[Passage],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    texts: dict[str, str],
    dense: Any = None,
    onnx: Path | None = None,
) -> Path:
    """Write a new generation under `root` and make it the current one; returns its folder.

    `texts` are the sources' texts as indexed, kept so that citations can always be checked
    and shown against exactly what was indexed. `dense` is an up-to-date FAISS index over
    `vectors` (an incremental build passes the previous one, updated); None builds one.
    `onnx` is a folder to carry as the generation's ONNX_DIR (hard links)."""
    import faiss

    if len(passages) != len(vectors):
        raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
    order = np.argsort(np.array([p.id for p in passages], dtype=np.int64), kind="stable")
    passages = [passages[i] for i in order]
    ids = np.array([p.id for p in passages], dtype=np.int64)
    vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("passage ids must be unique")

    if dense is not None and dense.ntotal != len(ids):
        raise ValueError(f"the FAISS index holds {dense.ntotal} vectors for {len(ids)} passages")

    def fill(tmp: Path) -> None:
        _write_manifest(tmp, manifest)
        PassageTable.from_passages(passages, len(sentence_vectors), texts).save(tmp)
        with open(tmp / "sources.jsonl", "w", encoding="utf-8") as fh:
            for name in sorted(texts):
                fh.write(json.dumps({"id": name, "text": texts[name]}, ensure_ascii=False) + "\n")
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        np.save(tmp / "sentence_vectors.npy", sentence_vectors.astype(np.float32), allow_pickle=False)
        checkpoint("writing")
        faiss.write_index(dense if dense is not None else build_dense(vectors, ids), str(tmp / "dense.faiss"))
        retriever, tokenizer, term_max = build_bm25([p.embed_text for p in passages])
        retriever.save(str(tmp / "bm25"), show_progress=False)
        tokenizer.save_vocab(str(tmp / "bm25"))
        np.save(tmp / "bm25" / "term_max.npy", term_max, allow_pickle=False)
        flat, offsets = sentence_terms(_sentence_texts(passages, len(sentence_vectors)), tokenizer.get_vocab_dict())
        np.save(tmp / SENTENCE_TERMS, flat, allow_pickle=False)
        np.save(tmp / SENTENCE_TERM_OFFSETS, offsets, allow_pickle=False)
        if onnx is not None:
            shutil.copytree(onnx, tmp / ONNX_DIR, copy_function=_link_or_copy)

    return _commit_generation(root, fill)


def _sentence_texts(passages: Sequence[Passage], count: int) -> list[str]:
    """The text of every sentence, at its row of the sentence-vector matrix."""
    texts = [""] * count
    for p in passages:
        for j, (a, b) in enumerate(p.sentences):
            texts[p.sentence_row + j] = p.text[a - p.start : b - p.start]
    return texts


def _link_or_copy(src: str, dst: str) -> None:
    """Files never change once written, so generations can share them."""
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not supported
        shutil.copy2(src, dst)


@contextmanager
def scratch_folder(root: Path) -> Iterator[Path]:
    """A temporary folder beside the generations (same file system, so hard links work);
    one left by a killed build is removed with the other leftovers."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-gen-scratch-{secrets.token_hex(3)}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_manifest(root: Path, manifest: Manifest, expected: Path) -> Path:
    """Make a new generation that differs from `expected` (the generation `manifest` was made
    from) only in its manifest (its other files are hard links, so this costs no copying), and
    switch to it. A writer like any other: it holds the lock, and refuses when another build
    has switched the index since `expected` was read."""
    with index_lock(root):
        gen = current_generation(root)
        if gen is None or gen.name != expected.name:
            raise RagError(
                f"the index in '{root}' changed while it was being calibrated (another build finished); run the calibration again"
            )

        def fill(tmp: Path) -> None:
            tmp.rmdir()
            shutil.copytree(gen, tmp, copy_function=_link_or_copy)
            (tmp / "manifest.json").unlink()
            _write_manifest(tmp, manifest)

        return _commit_generation(root, fill)


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2) + "\n", "utf-8")


def _commit_generation(root: Path, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write a generation under a temporary name, flush it, rename it into place
    and make it current; on any failure the temporary folder is removed and CURRENT is kept."""
    now = time.time()  # microseconds, so that names sort in build order even within a second
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S', time.localtime(now))}.{int(now % 1 * 1e6):06d}-{secrets.token_hex(3)}"
    tmp = root / f".tmp-{name}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise RagError(f"cannot create the index folder '{root}' ({exc.strerror or exc}); check the path and its permissions") from None
    try:
        fill(tmp)
        _fsync_tree(tmp)
        checkpoint("flushed")
        os.rename(tmp, root / name)
        checkpoint("renamed")
        _switch_current(root, name)
        checkpoint("switched")
    except OSError as exc:  # a full disk, a read-only or vanished folder: the current index stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        raise RagError(
            f"cannot write the new index generation in '{root}' ({exc.strerror or exc}); free disk space or fix the "
            "folder's permissions, then run again (the current index is unchanged)"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_old_generations(root, keep={name})
    return root / name


def _switch_current(root: Path, name: str) -> None:
    """Point CURRENT at generation `name` atomically: a flushed pointer file replaces it."""
    pointer = root / f".{CURRENT}.{secrets.token_hex(3)}"
    try:
        with open(pointer, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        checkpoint("pointer")
        os.replace(pointer, root / CURRENT)
    except BaseException:
        pointer.unlink(missing_ok=True)
        raise
    _fsync_path(root)


def remove_old_generations(root: Path, keep: set[str]) -> None:
    """Delete generations and leftovers of interrupted builds, except `keep` and the one
    before it (a running app may still be reading the previous generation)."""
    gens = sorted(p for p in root.glob("gen-*") if p.is_dir())
    keep = set(keep) | {p.name for p in gens[-2:]}
    for path in gens:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".tmp-gen-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f".{CURRENT}.*"):  # a pointer a killed build wrote but never switched to
        path.unlink(missing_ok=True)
