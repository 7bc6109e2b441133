"""Stage 4b, passages -> the lexical index: BM25 over passages and term lists of sentences.

bm25s holds the passage-level scores (sparse matrices saved as .npy/JSON). Beside it the
index keeps, for every sentence, the BM25 term ids it contains (a flat int32 array and its
offsets, CSR-style), so that sentence coverage, highlighting and "missing words" are array
lookups at query time, with no tokenizing of stored text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.terms import DOCUMENT_STOPWORDS, WORD, WORD_PATTERN, stemmer


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

    from rag.index.terms import STEMMER_LANGUAGE

    return Tokenizer(
        splitter=WORD_PATTERN, stopwords=sorted(DOCUMENT_STOPWORDS), stemmer=Stemmer.Stemmer(STEMMER_LANGUAGE)
    )


K1, B = 1.5, 0.75  # BM25's parameters (bm25s's defaults), the same in every store


def build_bm25(texts: Sequence[str]) -> tuple[Any, Any, np.ndarray]:
    """(bm25s index, its tokenizer, per-term maximum scores) over `texts`."""
    import bm25s

    tokenizer = new_bm25_tokenizer()
    tokens = tokenizer.tokenize(list(texts), return_as="tuple", show_progress=False)
    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index(tokens, show_progress=False)
    return retriever, tokenizer, term_maxima(retriever.scores["data"], retriever.scores["indptr"])


def stems_of(texts: Sequence[str]) -> list[list[str]]:
    """Each text's BM25 tokens (stems, repeats kept, stopwords out), exactly as build_bm25
    tokenizes it: what a store without bm25s indexes and counts."""
    if not texts:
        return []
    tokenizer = new_bm25_tokenizer()
    ids, vocab = tokenizer.tokenize(list(texts), return_as="tuple", show_progress=False)
    names = {i: s for s, i in vocab.items()}
    return [[names[i] for i in doc if names[i]] for doc in ids]


def tf_component(tf: np.ndarray, dl: np.ndarray, avgdl: float) -> np.ndarray:
    """BM25's term-frequency part (Lucene variant, as bm25s computes it), float32."""
    tf = np.asarray(tf, dtype=np.float32)
    return tf / (K1 * ((1 - B) + B * np.asarray(dl, dtype=np.float32) / np.float32(avgdl)) + tf)


@dataclass(frozen=True)
class Lexicon:
    """The corpus statistics a question's BM25 and idf weights need: vocabulary, document
    frequencies, each term's best score, and the passage count and mean length."""

    vocab: Mapping[str, int]  # stem -> term id
    df: np.ndarray  # passages holding each term
    term_max: np.ndarray  # each term's best BM25 score in any passage
    n_docs: int
    avgdl: float = 0.0


def count_terms(docs: Iterable[Sequence[str]]) -> tuple[dict[str, int], np.ndarray, int, int]:
    """(vocabulary in order of first use, document frequencies, documents, total tokens)."""
    vocab: dict[str, int] = {}
    df: list[int] = []
    n = total = 0
    for stems in docs:
        n += 1
        total += len(stems)
        for s in set(stems):
            i = vocab.setdefault(s, len(vocab))
            if i == len(df):
                df.append(0)
            df[i] += 1
    return vocab, np.array(df, dtype=np.int64), n, total


def lexicon_of(docs: Callable[[], Iterable[Sequence[str]]]) -> Lexicon:
    """The lexicon of a corpus given as a way to read every passage's stems (read twice: the
    best scores need the mean length first), so it never has to be held in memory whole."""
    vocab, df, n, total = count_terms(docs())
    avgdl = total / n if n else 1.0
    weights = idf(df.astype(np.float64), n).astype(np.float32)
    term_max = np.zeros(len(vocab), dtype=np.float32)
    for stems in docs():
        if not stems:
            continue
        ids, tf = np.unique(np.array([vocab[s] for s in stems], dtype=np.int64), return_counts=True)
        scores = weights[ids] * tf_component(tf, np.full(len(ids), len(stems)), avgdl)
        np.maximum.at(term_max, ids, scores)
    return Lexicon(vocab, df, term_max, n, avgdl)


def candidate_bm25(docs: Sequence[Sequence[str]], lexicon: Lexicon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term ids, passage positions, scores) of the BM25 entries of a few passages, under the
    whole corpus's statistics: the same values build_bm25 stores for them."""
    terms, owners, tfs, lengths = [], [], [], []
    for position, stems in enumerate(docs):
        ids, tf = np.unique(np.array([lexicon.vocab.get(s, -1) for s in stems], dtype=np.int64), return_counts=True)
        keep = ids >= 0
        terms.append(ids[keep])
        tfs.append(tf[keep])
        owners.append(np.full(int(keep.sum()), position, dtype=np.int64))
        lengths.append(np.full(int(keep.sum()), len(stems), dtype=np.int64))
    if not terms:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    t, o = np.concatenate(terms), np.concatenate(owners)
    weights = idf(lexicon.df[t].astype(np.float64), lexicon.n_docs).astype(np.float32)
    return t, o, weights * tf_component(np.concatenate(tfs), np.concatenate(lengths), lexicon.avgdl)


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

    @classmethod
    def from_entries(cls, terms: np.ndarray, rows: np.ndarray, scores: np.ndarray, lexicon: Lexicon, n: int) -> LexicalIndex:
        """The index of a few passages (rows 0..n-1) from their BM25 entries, keyed by the whole
        corpus's term ids, with its best scores."""
        order = np.lexsort((rows, terms))
        counts = np.bincount(terms.astype(np.int64), minlength=len(lexicon.df))
        indptr = np.zeros(len(lexicon.df) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(scores[order].astype(np.float32), rows[order].astype(np.int64), indptr, lexicon.vocab,  # type: ignore[arg-type]
                   lexicon.term_max, n)

    def scores(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of every passage for the distinct term ids `terms` (float64), and the row of
        each of their postings (a passage holding several of the terms appears once per term)."""
        starts, ends = self.indptr[terms], self.indptr[terms + 1]
        counts = ends - starts
        firsts = np.zeros(len(terms), dtype=np.int64)
        np.cumsum(counts[:-1], out=firsts[1:])
        pos = np.repeat(starts - firsts, counts) + np.arange(int(counts.sum()))
        rows = self.indices[pos]
        return np.bincount(rows, weights=self.data[pos], minlength=self.n_docs), rows


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
