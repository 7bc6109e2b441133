"""Open the live generation of an index folder, read-only.

CURRENT is read once, so the manifest and the files come from one generation. Readers take no
lock: when a build switches and removes the generation being read, the reader starts again from
the new CURRENT, so it never fails because a build switched under it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from rag.errors import RagError
from rag.index.dense import DenseIndex
from rag.index.layout import (
    SENTENCE_TERM_OFFSETS,
    SENTENCE_TERMS,
    IndexState,
    current_generation,
    inspect_index,
)
from rag.index.lexical import LexicalIndex, Lexicon
from rag.index.passages import PassageTable
from rag.types import Manifest, Passage, field_of


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
