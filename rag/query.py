"""Stage 5a, question -> terms: its content words, their BM25 term ids, and what it negates.

A pure function of the question and the index's vocabulary. The same terms drive BM25, the
sentence coverage used in fusion and highlighting, the abstention features and the list of
question words the shown passages never contain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .terms import QUESTION_STOPWORDS, WORD, is_negated


@dataclass(frozen=True)
class QueryTerms:
    """The question's content words, one per distinct stem, in the order they appear."""

    words: tuple[str, ...]  # as written in the question
    stems: tuple[str, ...]
    ids: tuple[int, ...]  # BM25 term id of each stem, -1 where the index has never seen it
    negated: bool  # the question holds "not", "never", "n't"...
    names: tuple[bool, ...] = ()  # per word: it looks like a name or a figure (capitalised
    # after the question's first word, or holding a digit)

    @cached_property
    def known(self) -> np.ndarray:
        """Sorted unique term ids the index has seen (int64)."""
        return np.unique(np.array([i for i in self.ids if i >= 0], dtype=np.int64))

    @property
    def unseen(self) -> int:
        return sum(1 for i in self.ids if i < 0)


def analyze(question: str, stem: Callable[[str], str], vocab: Mapping[str, int]) -> QueryTerms:
    """Content words of `question` (question stopwords out), stemmed as BM25 stems them."""
    words: list[str] = []
    stems: list[str] = []
    names: list[bool] = []
    for position, match in enumerate(WORD.finditer(question)):
        word = match.group()
        lower = word.lower()
        if lower in QUESTION_STOPWORDS:
            continue
        s = stem(lower)
        if s not in stems:
            words.append(word)
            stems.append(s)
            names.append(any(c.isdigit() for c in word) or (position > 0 and word[0].isupper()))
    return QueryTerms(
        words=tuple(words),
        stems=tuple(stems),
        ids=tuple(int(vocab.get(s, -1)) for s in stems),
        negated=is_negated(question),
        names=tuple(names),
    )
