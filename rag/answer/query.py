"""Stage 5a, question -> terms: its content words, their BM25 term ids, and what it negates.

A pure function of the question and the index's vocabulary. The same terms drive BM25, the
sentence coverage used in fusion and highlighting, the abstention features and the list of
question words the shown passages never contain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rag.index import QUESTION_STOPWORDS, WORD, is_negated
from rag.types import QueryTerms


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
