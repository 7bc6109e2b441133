"""Stage 5b, question -> candidate passages with their evidence: dense and BM25 retrieval.

The candidates are the union of the nearest passages by cosine (FAISS) and the best by BM25
(or every passage of the sources a search is limited to). For each candidate, the passage
cosine, the BM25 score scaled by the best the question could get, and, for each of its
sentences, the cosine to the question (stored sentence vectors: one dot product) and the
share of the question's idf weight it holds (stored sentence term lists).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.index import Index, coverage, top_rows
from rag.types import QueryTerms


@dataclass(frozen=True)
class QueryWeights:
    """The question's term ids with their idf, and the idf mass coverage is measured against."""

    known: np.ndarray  # sorted int64 term ids the index has seen
    idf: np.ndarray  # idf of each known id
    total: float  # idf of every content word, a word never seen counting as the rarest


@dataclass(frozen=True)
class Candidates:
    """Row-aligned evidence of the candidate passages; sentence arrays are grouped by
    candidate, in each passage's sentence order."""

    rows: np.ndarray  # int64 passage rows, ascending
    dense: np.ndarray  # cosine of question and passage
    lexical: np.ndarray  # BM25 / best possible BM25 for the question
    sentence_rows: np.ndarray  # int64 rows of the sentence-vector matrix
    sentence_owner: np.ndarray  # candidate index of each sentence
    sentence_first: np.ndarray  # index of each candidate's first sentence in the sentence arrays
    sentence_cosine: np.ndarray
    sentence_coverage: np.ndarray


def query_weights(terms: QueryTerms, idf: np.ndarray, unseen_idf: float) -> QueryWeights:
    known = terms.known
    weights = idf[known].astype(np.float64)
    return QueryWeights(known, weights, float(weights.sum()) + terms.unseen * unseen_idf)


def top_of_postings(scores: np.ndarray, rows: np.ndarray, terms: int, n: int) -> np.ndarray:
    """`top_rows(scores, n)` without sorting every passage, when `scores` is 0 except at `rows`
    (the rows of the postings of `terms` distinct terms), where it is > 0 (BM25: idf and term
    frequency are positive). No row appears more than once per term, so the (n * terms)-th
    largest posting score is a floor that the n-th best row reaches, and only rows at or above
    it are ranked. Rows holding no term fill up after them, lowest first, as a full sort
    gives them."""
    if len(rows) > n * terms:
        values = scores[rows]
        floor = np.partition(values, len(values) - n * terms)[len(values) - n * terms]
        rows = rows[values >= floor]
    held = np.unique(rows)
    best = held[top_rows(scores[held], n)]
    if len(best) < n:
        spare = np.setdiff1d(np.arange(min(len(scores), n + len(held))), held, assume_unique=True)
        best = np.concatenate([best, spare[: n - len(best)]])
    return best


# best_bm25_rows sorts every row of a corpus this small: one numpy pass over a few thousand
# scores costs less than the several passes top_of_postings makes over the postings, and from
# about 20,000 rows on the postings cost less whatever their share (docs/speed.md, "Queries")
FULL_SORT_MAX = 8192


def best_bm25_rows(scores: np.ndarray, rows: np.ndarray, terms: int, n: int) -> np.ndarray:
    """`top_rows(scores, n)` by whichever of a full sort and `top_of_postings` costs less."""
    if len(scores) <= FULL_SORT_MAX:
        return top_rows(scores, n)
    return top_of_postings(scores, rows, terms, n)


def bm25_scores(index: Index, terms: QueryTerms, rarest: float) -> tuple[np.ndarray, float, np.ndarray]:
    """BM25 of every passage, the best score any passage could get (the sum of each known
    term's best score plus, for each word never seen, the rarest term's best), and the row of
    each posting of the question's words."""
    known = terms.known
    scores, rows = index.lexical.scores(known)
    return scores, float(index.term_max[known].sum()) + terms.unseen * rarest, rows


def retrieve(
    index: Index, qvec: np.ndarray, terms: QueryTerms, weights: QueryWeights, pool: int, rarest: float,
    allowed: np.ndarray | None = None,
) -> Candidates:
    """Candidates for one encoded question (`qvec`: unit float32 vector); `allowed`, when
    given, is every row the search may return (a source filter), all of them candidates."""
    bm25, bound, holding = bm25_scores(index, terms, rarest)
    if allowed is not None:
        rows = allowed
    elif pool >= len(index.passages):  # every passage is among the nearest
        rows = np.arange(len(index.passages))
    else:
        best_bm25 = best_bm25_rows(bm25, holding, len(terms.known), pool)
        rows = np.union1d(index.rows(index.dense.search(qvec, pool)), best_bm25)
    dense = np.asarray(index.vectors[rows] @ qvec, dtype=np.float64)
    lexical = bm25[rows] / bound if bound > 0 else np.zeros(len(rows))
    counts = index.sentence_counts[rows]
    first = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    owner = np.repeat(np.arange(len(rows)), counts)
    sentence_rows = np.repeat(index.sentence_starts[rows] - first, counts) + np.arange(int(counts.sum()))
    cosine = np.asarray(index.sentence_vectors[sentence_rows] @ qvec, dtype=np.float64)
    cover = coverage(index.sentence_terms, index.sentence_term_offsets, sentence_rows, weights.known, weights.idf, weights.total)
    return Candidates(rows, dense, lexical, sentence_rows, owner, first, cosine, cover)
