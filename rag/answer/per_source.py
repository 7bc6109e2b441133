"""Stage 5f, candidate sentences -> what each source says: one statement per source, grouped.

Pure functions over the evidence the search already has for every candidate sentence (its
support, computed as a hit's from the sentence in its passage). Each source's statement is
its best sentence, as a passage's marked sentence is picked (one stating a figure of the kind
asked for is preferred when it scores nearly as well); a source is shown when its statement is
well supported and about as close to the question as the closest source's (README: "What each
source says").
Statements that say the same thing (the same content words, for the most part; wire copy
republished) are one group, unless their figures disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rag.answer.figures import agree
from rag.answer.types import Figure

SUPPORT_FLOOR = 0.2  # a statement's support must reach this (and the index's threshold) ...
COSINE_MARGIN = 0.175  # ... and its cosine be within this of the closest statement's (README: "What each source says")
SAME_WORDS = 0.6  # share of the shorter statement's content words the other must hold to say the same
MIN_SHARED_WORDS = 3


MAX_SOURCES = 10  # sources considered per question: those whose best sentence scores highest
FIGURE_MARGIN = 0.25  # a sentence with the figure asked for wins if it scores within this of the best
FIGURE_LOOKAHEAD = 5  # how many of a source's best sentences are read for such a figure


def ranked_by_source(sources: Sequence[str] | np.ndarray, ranking: np.ndarray, depth: int = FIGURE_LOOKAHEAD,
                     limit: int = MAX_SOURCES) -> dict[str | int, list[int]]:
    """The `limit` sources whose best candidate sentence ranks highest by `ranking` (the score
    that marks a passage's supporting sentence), each with its `depth` best, best first;
    `sources` labels each sentence with its source (names, or a 1-D array of ids)."""
    ranking = np.asarray(ranking, dtype=np.float64)
    order = np.lexsort((np.arange(len(ranking)), -ranking))  # best first, ties by position
    out: dict[str | int, list[int]] = {}
    for i, label in zip(order.tolist(), np.asarray(sources)[order].tolist()):
        best = out.get(label)
        if best is None:
            if len(out) < limit:
                out[label] = [i]
        elif len(best) < depth:
            best.append(i)
    return out


def statement_of(order: Sequence[int], ranking: np.ndarray, shown: Callable[[int], bool] | None = None) -> int:
    """A source's statement: its best sentence, or, when `shown` is given (the question asks for
    a figure; `shown` says a sentence states one and is supported well enough to be shown)
    and the best does not qualify, the first of the next ones that does and scores within
    FIGURE_MARGIN of the best."""
    if shown is None or shown(order[0]):
        return order[0]
    floor = float(ranking[order[0]]) - FIGURE_MARGIN
    return next((i for i in order[1:] if ranking[i] >= floor and shown(i)), order[0])


def with_evidence(candidates: Sequence[int], support: Mapping[int, float], cosine: np.ndarray, threshold: float) -> list[int]:
    """The statements shown, best supported first: those whose support reaches SUPPORT_FLOOR
    (and the index's threshold) and whose cosine to the question is within COSINE_MARGIN of
    the closest such statement's."""
    floor = max(threshold, SUPPORT_FLOOR)
    supported = [i for i in candidates if support[i] >= floor]
    if not supported:
        return []
    closest = max(float(cosine[i]) for i in supported)
    return sorted((i for i in supported if cosine[i] >= closest - COSINE_MARGIN), key=lambda i: -support[i])


def say_the_same(a: frozenset[int], b: frozenset[int], min_overlap: float = SAME_WORDS, min_shared: int = MIN_SHARED_WORDS) -> bool:
    """Whether two statements' content-word sets mostly coincide: the shorter one's words are at
    least `min_overlap` in the other, and at least `min_shared` of them."""
    shared = len(a & b)
    return shared >= min_shared and shared >= min_overlap * min(len(a), len(b))


def group(terms: Sequence[frozenset[int]], figures: Sequence[Sequence[Figure]]) -> list[int]:
    """A group id per statement (0, 1, ... in order of first appearance): statements that say
    the same thing and whose figures agree, linked transitively."""
    parent = list(range(len(terms)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(terms)):
        for j in range(i + 1, len(terms)):
            if say_the_same(terms[i], terms[j]) and agree(list(figures[i]), list(figures[j])):
                parent[root(j)] = root(i)
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(len(terms))]
