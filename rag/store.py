"""Stage 4, vectors -> index/: the index as a folder of plain files, written atomically.

Layout of an index folder:

    CURRENT                 name of the live generation, replaced atomically
    .lock                   held (flock) by the one process writing the index
    gen-<time>-<rand>/      one complete, self-contained generation
        manifest.json       how, from what and with what it was built
        passages.npy, sentence_spans.npy, passage_strings.json
                            the passages as columns, ascending id (rag.passages)
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

Arrays are saved with allow_pickle=False; nothing is pickled. A generation is written under a
temporary name, flushed to disk and renamed, then CURRENT is switched with os.replace, so a
reader sees either the old index or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import RagError
from .lexical import LexicalIndex, Lexicon, build_bm25, sentence_terms
from .passages import PassageTable
from .types import Manifest, Passage, field_of

FORMAT_VERSION = 4  # 2: onnx/ (a verified ONNX copy of the model); 3: sentence term lists, abstention model;
# 4: columnar passages (passages.npy, sentence_spans.npy, passage_strings.json), precision
SENTENCE_TERMS = "sentence_terms.npy"
SENTENCE_TERM_OFFSETS = "sentence_term_offsets.npy"
ONNX_DIR = "onnx"
CURRENT = "CURRENT"


@dataclass(frozen=True)
class Index:
    """An opened generation: everything a query needs, loaded once."""

    path: Path
    manifest: Manifest
    passages: PassageTable  # row order (ascending id); also the source texts as indexed
    vectors: np.ndarray  # (n, d) float32
    sentence_vectors: np.ndarray  # (sentences, d) float32
    dense: DenseIndex  # nearest passages by cosine
    lexical: LexicalIndex  # BM25 scores and vocabulary
    sentence_terms: np.ndarray  # int32 BM25 term ids of every sentence, concatenated
    sentence_term_offsets: np.ndarray  # int64: sentence i holds sentence_terms[o[i]:o[i+1]]

    @property
    def ids(self) -> np.ndarray:
        """int64 passage ids, ascending, row-aligned with the passages."""
        return self.passages.ids

    @property
    def sentence_starts(self) -> np.ndarray:
        return self.passages.sentence_starts

    @property
    def sentence_counts(self) -> np.ndarray:
        return self.passages.sentence_counts

    @property
    def texts(self) -> Mapping[str, str]:
        """The source texts as indexed, by source id."""
        return self.passages.texts

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each passage id."""
        return np.searchsorted(self.ids, ids)

    @property
    def term_max(self) -> np.ndarray:
        return self.lexical.term_max

    def title(self, source: str) -> str:
        record = self.manifest.sources.get(source)
        return record.title if record else source

    @property
    def label(self) -> str:
        """The generation's name (the app shows it and watches for a new one)."""
        return self.path.name if self.path is not None else "candidates"

    @property
    def lexicon(self) -> Lexicon:
        """The corpus statistics questions are weighted with."""
        return Lexicon(self.lexical.vocab, self.lexical.df, self.lexical.term_max, len(self.passages))

    def source_names(self) -> tuple[str, ...]:
        return tuple(self.passages.sources)

    def __len__(self) -> int:
        return len(self.passages)

    def view(self, qvec: np.ndarray, terms: object, pool: int, sources: Collection[str] | None) -> tuple[Index, np.ndarray | None]:
        """What one question searches: the whole index, limited to the rows of `sources` when given."""
        return self, (self.passages.rows_of(list(sources)) if sources else None)

    def all_passages(self) -> Iterator[Passage]:
        return iter(self.passages)


# Exact search up to this many passages; an inverted-file index above (README, "Scale").
FLAT_MAX = 50_000
IVF_NPROBE_SHARE = 5  # one list in this many is probed. With 8-bit codes and the search's exact
# rescoring of its 100 candidates, recall@10 against exact search on 1M synthetic passages with
# SQuAD's neighbour structure was 0.949 probing 512 of 4,000 lists and 0.985 probing 1,024
# (docs/speed.md, "Scale"); one in 5 (800) lies between.


class DenseIndex:
    """Nearest passages by inner product. An exact index is searched with numpy over the mapped
    vectors, so a query never imports FAISS; an approximate one (IVF) is FAISS's. The FAISS
    object itself is read on first use (updates and IVF searches)."""

    def __init__(self, path: Path, kind: str, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.path, self.kind, self._vectors, self._ids = path, kind, vectors, ids
        self._faiss: Any = None

    @property
    def exact(self) -> bool:
        return self.kind.startswith("IDMap2,Flat")

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def faiss(self) -> Any:
        """The FAISS index as written (loaded once)."""
        if self._faiss is None:
            import faiss

            self._faiss = faiss.read_index(str(self.path))
        return self._faiss

    def share_cores(self) -> None:
        """Search one question's inverted lists on all of OpenMP's threads (FAISS parallelizes
        over questions by default, which leaves a single question on one core). Reads the
        FAISS index now rather than at the first question."""
        if not self.exact:
            self.faiss().parallel_mode = 1

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Ids of the `k` nearest passages to one unit query vector, best first."""
        if self.exact:
            from .retrieval import top_rows

            scores = np.asarray(self._vectors @ query.reshape(-1), dtype=np.float32)
            return self._ids[top_rows(scores, k)]
        # twice as many as asked, then the best k by (score, id): FAISS breaks ties between
        # equal 8-bit scores by the order its threads finish, and a search must not depend on that
        scores, ids = self.faiss().search(query.reshape(1, -1), 2 * k)
        found = ids[0] >= 0
        scores, ids = scores[0][found], ids[0][found]
        return ids[np.lexsort((ids, -scores))[:k]]


def dense_kind(n: int) -> str:
    """The FAISS index for `n` passages, as recorded in the manifest."""
    if n <= FLAT_MAX:
        return "IDMap2,Flat"
    return f"IVF{ivf_lists(n)},SQ8,nprobe={ivf_nprobe(ivf_lists(n))}"


def ivf_lists(n: int) -> int:
    return int(4 * np.sqrt(n))


def ivf_nprobe(lists: int) -> int:
    return max(32, lists // IVF_NPROBE_SHARE)


def build_dense(vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> Any:
    """Inner-product FAISS index over unit vectors keyed by int64 passage id: exact up to
    FLAT_MAX passages, IVF above (k-means lists, one in IVF_NPROBE_SHARE probed per query, vectors
    held as 8-bit codes: a quarter of the memory; the search rescores its candidates exactly
    from the mapped float vectors)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if n <= FLAT_MAX:
        index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    else:
        lists = ivf_lists(n)
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, lists, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, size=min(n, 64 * lists), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = ivf_nprobe(lists)
    if n:
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for sub in sorted(path.rglob("*")):
        _fsync_path(sub)
    _fsync_path(path)


def checkpoint(name: str) -> None:
    """A named point of a build where the crash tests stop it (RAG_PAUSE_AT=name makes the
    process announce the point on stderr and wait there to be killed)."""
    if os.environ.get("RAG_PAUSE_AT") == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)


_HELD: dict[Path, int] = {}  # index folders this process holds the lock of, and how deeply


def _locked_by(root: Path) -> str:
    try:
        return (root / ".lock").read_text("utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def index_lock(root: Path) -> Iterator[None]:
    """Hold the index folder for writing; a second writer is refused, never interleaved.
    Re-entrant within a process (a command holds it while it loads the model and builds). The
    lock dies with its process, so a killed build never leaves the folder locked."""
    import fcntl

    check_index_path(root)
    key = root.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RagError(
                f"another process is writing the index in '{root}' ({_locked_by(root)}); wait for it to finish, then run again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_locked(root: Path) -> bool:
    """Whether another process holds the index folder's lock (a build is running)."""
    try:
        with index_lock(root):
            return False
    except RagError:
        return True


def check_index_path(root: Path) -> None:
    """An index path must be a folder (or not exist yet)."""
    if root.exists() and not root.is_dir():
        raise RagError(f"--index '{root}' is a file, not an index folder; give a folder (it is created if missing)")


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


def read_manifest(root: Path) -> Manifest:
    """The current generation's manifest, or a one-line error that says to build or rebuild."""
    state = inspect_index(root)
    if state.manifest is None:
        raise RagError(state.message)
    return state.manifest


def read_texts(path: Path) -> dict[str, str]:
    """The source texts a generation was built from, by source id."""
    texts: dict[str, str] = {}
    try:
        with open(path / "sources.jsonl", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                record = json.loads(line)
                texts[field_of(record, "id", "str")] = field_of(record, "text", "str")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        where = f"sources.jsonl:{number}" if "number" in locals() else "sources.jsonl"
        raise RagError(f"the index in '{path.parent}' is damaged ({where}: {exc}); rebuild it with: rag index --full") from None
    return texts


OPEN_ATTEMPTS = 5
T = TypeVar("T")


def open_index(root: Path) -> Index:
    """Load the current generation for querying (CURRENT is read once: the manifest and the
    files always come from the same generation)."""
    return open_with(root, lambda index: index)


def open_with(root: Path, use: Callable[[Index], T]) -> T:
    """`use(open index)`, for a reader that needs more of the same generation (its texts, its
    copy of the model). Readers take no lock: when builds switch and clean up fast enough to
    remove the generation being read, the reader starts again from the new CURRENT."""
    for attempt in range(OPEN_ATTEMPTS):
        state = inspect_index(root)
        try:
            return use(_open_generation(root, state))
        except RagError:
            if attempt == OPEN_ATTEMPTS - 1 or state.generation is None or not _switched(root, state.generation):
                raise
    raise AssertionError("unreachable")


def _switched(root: Path, generation: Path) -> bool:
    """Whether a build has moved CURRENT away from `generation` (or begun removing it) since it
    was read: the reader's failure is then the clean-up's doing, not damage."""
    if not generation.is_dir():
        return True
    try:
        return current_generation(root) != generation
    except RagError:
        return False


def _open_generation(root: Path, state: IndexState) -> Index:
    if state.manifest is None or state.generation is None:
        raise RagError(state.message)
    manifest, gen = state.manifest, state.generation
    try:
        texts = read_texts(gen)
        passages = PassageTable.load(gen, texts)
        vectors = np.asarray(np.load(gen / "vectors.npy", allow_pickle=False, mmap_mode="r"))
        sentence_vectors = np.asarray(np.load(gen / "sentence_vectors.npy", allow_pickle=False, mmap_mode="r"))
        dense = DenseIndex(gen / "dense.faiss", manifest.faiss_index, vectors, passages.ids)
        if not dense.exact or not (gen / "dense.faiss").is_file():
            dense.faiss()  # an approximate index is searched by FAISS: read it now, to fail here if damaged
        lexical = LexicalIndex.load(gen / "bm25", len(passages))
        flat = np.asarray(np.load(gen / SENTENCE_TERMS, allow_pickle=False, mmap_mode="r"))
        offsets = np.load(gen / SENTENCE_TERM_OFFSETS, allow_pickle=False)
    except (OSError, ValueError, KeyError, RuntimeError, UnicodeDecodeError, EOFError) as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise RagError(f"the index in '{root}' is damaged ({detail}); rebuild it with: rag index --full") from None
    sentences = len(passages.spans)
    if (
        vectors.shape != (len(passages), manifest.dimension)
        or len(passages) != manifest.passages
        or (dense._faiss is not None and dense.faiss().ntotal != len(passages))
        or sentence_vectors.shape != (sentences, manifest.dimension)
        or offsets.shape != (sentences + 1,)
        or (len(offsets) and (offsets[-1] != len(flat) or np.any(np.diff(offsets) < 0)))
        or (len(lexical.indices) and int(lexical.indices.max()) >= len(passages))
    ):
        raise RagError(f"the index in '{root}' is inconsistent (its files disagree); rebuild it with: rag index --full")
    return Index(
        path=gen,
        manifest=manifest,
        passages=passages,
        vectors=vectors,
        sentence_vectors=sentence_vectors,
        dense=dense,
        lexical=lexical,
        sentence_terms=flat,
        sentence_term_offsets=offsets,
    )
