"""Stage 5d, ranked candidates -> what is shown: each passage's best sentence, the spans shown
without repeating a sentence, and the question words no shown passage contains.

Pure functions over arrays: sentence cosines and coverages come from the retrieval stage,
spans and term ids from the index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rag.types import QueryTerms

Span = tuple[int, int]


def sentence_scores(cosines: np.ndarray, coverage: np.ndarray, lexical_weight: float) -> np.ndarray:
    """How well each sentence supports the question: its cosine plus the weighted share of
    the question's idf weight it holds. The marked sentence of a passage is its best."""
    return np.asarray(cosines, dtype=np.float64) + lexical_weight * np.asarray(coverage, dtype=np.float64)


def best_per_candidate(owner: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Index (into the sentence arrays) of each candidate's best-scoring sentence; `owner`
    gives each sentence's candidate, sentences of one candidate being contiguous."""
    order = np.lexsort((-scores, owner))  # by candidate, best sentence first
    firsts = np.searchsorted(owner[order], np.arange(n))
    return order[firsts]


def select_spans(
    ordered_rows: Iterable[int],
    sources: Sequence[str],
    sentences: Sequence[Sequence[Span]],
    k: int,
) -> list[tuple[int, int, int]]:
    """(row, first, last) sentence ranges to show, so that no sentence is shown twice.

    Passages overlap by design; a passage whose sentences were all shown by a better one is
    skipped, and one that shares some keeps its longest run of unseen sentences.
    """
    shown: dict[str, set[Span]] = {}
    out: list[tuple[int, int, int]] = []
    for row in ordered_rows:
        if len(out) >= k:
            break
        seen = shown.setdefault(sources[row], set())
        sents = sentences[row]
        best: tuple[int, int] | None = None
        run_start: int | None = None
        for i in range(len(sents) + 1):
            fresh = i < len(sents) and sents[i] not in seen
            if fresh and run_start is None:
                run_start = i
            if not fresh and run_start is not None:
                if best is None or i - run_start > best[1] - best[0]:
                    best = (run_start, i)
                run_start = None
        if best is None:
            continue
        out.append((row, best[0], best[1]))
        seen.update(sents[best[0] : best[1]])
    return out


def missing_words(terms: QueryTerms, present: np.ndarray) -> tuple[str, ...]:
    """The question's content words that no shown passage contains, as written in the
    question; `present` flags each of `terms.known` (sorted ids). Unseen words always count."""
    known = terms.known
    found = {int(t) for t, p in zip(known, present) if p}
    return tuple(word for word, term in zip(terms.words, terms.ids) if term < 0 or term not in found)


def name_missing(terms: QueryTerms, present: np.ndarray) -> np.ndarray:
    """Per row of `present` (rows: passages; columns: `terms.known`), 1.0 when a question word
    that looks like a name or a figure is absent from that passage (or from the index)."""
    present = np.atleast_2d(present)
    known = terms.known.tolist()
    out = np.zeros(len(present))
    for term, name in zip(terms.ids, terms.names):
        if name:
            out = np.maximum(out, 1.0 if term < 0 else (~present[:, known.index(term)]).astype(float))
    return out


def rarest_missing(terms: QueryTerms, present: np.ndarray, idf: np.ndarray, max_idf: float) -> np.ndarray:
    """Per row of `present`, the rarity (idf / the idf of a word no passage has) of the rarest
    question word absent from it: 1.0 when the index has never seen one of the words, 0.0
    when none is missing."""
    present = np.atleast_2d(present)
    if terms.unseen:
        return np.ones(len(present))
    if not len(terms.known):
        return np.zeros(len(present))
    rarity = idf[terms.known] / max_idf
    return (np.where(present, 0.0, 1.0) * rarity).max(axis=1)
