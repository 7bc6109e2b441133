"""Stage 4b, passages -> the lexical index: BM25 over passages and term lists of sentences.

bm25s holds the passage-level scores (sparse matrices saved as .npy/JSON). Beside it the
index keeps, for every sentence, the BM25 term ids it contains (a flat int32 array and its
offsets, CSR-style), so that sentence coverage, highlighting and "missing words" are array
lookups at query time, with no tokenizing of stored text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .terms import DOCUMENT_STOPWORDS, WORD, WORD_PATTERN, stemmer


def idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """BM25's inverse document frequency (Lucene's variant, as bm25s computes it)."""
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def term_maxima(data: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Each column's largest value in a CSC matrix given by (data, indptr); 0 for empty ones."""
    out = np.zeros(len(indptr) - 1, dtype=np.float32)
    nonempty = indptr[1:] > indptr[:-1]
    if nonempty.any():
        out[nonempty] = np.maximum.reduceat(np.asarray(data), np.asarray(indptr[:-1])[nonempty])
    return out


def new_bm25_tokenizer() -> Any:
    """bm25s's tokenizer with our word pattern, Lucene stopwords and the Snowball stemmer."""
    import Stemmer
    from bm25s.tokenization import Tokenizer

    from .terms import STEMMER_LANGUAGE

    return Tokenizer(
        splitter=WORD_PATTERN, stopwords=sorted(DOCUMENT_STOPWORDS), stemmer=Stemmer.Stemmer(STEMMER_LANGUAGE)
    )


def build_bm25(texts: Sequence[str]) -> tuple[Any, Any, np.ndarray]:
    """(bm25s index, its tokenizer, per-term maximum scores) over `texts`."""
    import bm25s

    tokenizer = new_bm25_tokenizer()
    tokens = tokenizer.tokenize(list(texts), return_as="tuple", show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    return retriever, tokenizer, term_maxima(retriever.scores["data"], retriever.scores["indptr"])


BM25_FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json", "term_max.npy")


@dataclass(frozen=True)
class LexicalIndex:
    """BM25 as bm25s saved it (term-major sparse scores), read without importing bm25s: a
    question's scores are sums of its terms' columns, and its vocabulary maps stems to ids."""

    data: np.ndarray  # float32 scores, grouped by term (mapped from disk)
    indices: np.ndarray  # the passage row of each score
    indptr: np.ndarray  # term t's scores are data[indptr[t]:indptr[t+1]]
    vocab: dict[str, int]  # stem -> term id
    term_max: np.ndarray  # each term's best score in any passage
    n_docs: int

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> LexicalIndex:
        data = np.asarray(np.load(folder / BM25_FILES[0], allow_pickle=False, mmap_mode="r"))
        indices = np.asarray(np.load(folder / BM25_FILES[1], allow_pickle=False, mmap_mode="r"))
        indptr = np.load(folder / BM25_FILES[2], allow_pickle=False)
        vocab = json.loads((folder / BM25_FILES[3]).read_text("utf-8"))
        term_max = np.load(folder / BM25_FILES[4], allow_pickle=False)
        if not isinstance(vocab, dict) or not all(isinstance(k, str) and type(v) is int for k, v in vocab.items()):
            raise ValueError("vocab.index.json must map stems to term ids")
        if len(indptr) != len(vocab) + 1 or len(term_max) != len(vocab) or len(data) != len(indices) or indptr[-1] != len(data):
            raise ValueError("the BM25 files disagree on their sizes")
        return cls(data, indices, indptr, vocab, term_max, n_docs)

    @property
    def df(self) -> np.ndarray:
        """How many passages hold each term."""
        return np.diff(self.indptr)

    def scores(self, terms: np.ndarray) -> np.ndarray:
        """BM25 of every passage for the term ids `terms` (float64)."""
        if not len(terms):
            return np.zeros(self.n_docs)
        starts, ends = self.indptr[terms], self.indptr[terms + 1]
        counts = ends - starts
        firsts = np.zeros(len(terms), dtype=np.int64)
        np.cumsum(counts[:-1], out=firsts[1:])
        pos = np.repeat(starts - firsts, counts) + np.arange(int(counts.sum()))
        return np.bincount(self.indices[pos], weights=self.data[pos], minlength=self.n_docs)


def term_ids(text: str, stem: Callable[[str], str], vocab: Mapping[str, int]) -> list[int]:
    """Sorted distinct BM25 term ids of the words of `text` (words the vocabulary lacks dropped)."""
    found = {vocab.get(stem(w)) for w in WORD.findall(text.lower()) if w not in DOCUMENT_STOPWORDS}
    return sorted(i for i in found if i is not None)


def sentence_terms(sentences: Sequence[str], vocab: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(flat int32 term ids, int64 offsets): sentence i holds ids[offsets[i]:offsets[i+1]]."""
    stem = stemmer()
    lists = [term_ids(s, stem, vocab) for s in sentences]
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    flat = np.fromiter((i for x in lists for i in x), dtype=np.int32, count=int(offsets[-1]))
    return flat, offsets


def positions(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the flat term array of the given sentence rows, and each row's start
    among those positions (for np.add.reduceat; rows with no terms get an empty run)."""
    starts, ends = offsets[rows], offsets[rows + 1]
    counts = ends - starts
    firsts = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(counts[:-1], out=firsts[1:])
    pos = np.repeat(starts - firsts, counts) + np.arange(int(counts.sum()))
    return pos, firsts


def weights_of(terms: np.ndarray, known: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each term id in `terms`, its weight if it is one of the sorted `known` ids, else 0."""
    if not len(known) or not len(terms):
        return np.zeros(len(terms))
    at = np.minimum(np.searchsorted(known, terms), len(known) - 1)
    return np.where(known[at] == terms, weights[at], 0.0)


def coverage(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, known: np.ndarray, weights: np.ndarray, total: float) -> np.ndarray:
    """Share of the question's weight (`total`, its idf mass, unseen words included) that each
    sentence row contains; `known` are the question's sorted term ids, `weights` their idf."""
    if not len(rows) or total <= 0:
        return np.zeros(len(rows))
    pos, firsts = positions(offsets, rows)
    found = np.append(weights_of(flat[pos].astype(np.int64), known, weights), 0.0)
    sums = np.add.reduceat(found, np.minimum(firsts, len(found) - 1))
    sums[offsets[rows + 1] == offsets[rows]] = 0.0  # rows with no terms
    return sums / total


def present_by_owner(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, owner: np.ndarray, n: int,
                     known: np.ndarray) -> np.ndarray:
    """(n, len(known)) bool: which of the sorted ids `known` occur in the sentence rows owned by
    each of n owners (`owner[i]` owns `rows[i]`)."""
    out = np.zeros((n, len(known)), dtype=bool)
    if not len(rows) or not len(known):
        return out
    pos, firsts = positions(offsets, rows)
    counts = offsets[rows + 1] - offsets[rows]
    terms = flat[pos].astype(np.int64)
    at = np.minimum(np.searchsorted(known, terms), len(known) - 1)
    hit = known[at] == terms
    out[np.repeat(owner, counts)[hit], at[hit]] = True
    return out


def present(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Which of the sorted term ids `known` occur in any of the sentence rows."""
    if not len(rows) or not len(known):
        return np.zeros(len(known), dtype=bool)
    pos, _ = positions(offsets, rows)
    return (flat[pos][:, None] == known[None, :]).any(axis=0)  # a handful of ids: no sort needed
