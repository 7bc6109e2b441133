"""What a question returns: hits cited to exact spans, figures, per-source statements.

Frozen dataclasses, like rag.types; every text here is a slice of a source's text as indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag.types import FigureKind


@dataclass(frozen=True)
class Hit:
    """One ranked, cited passage of an answer."""

    rank: int
    score: float
    source: str
    title: str
    start: int
    end: int
    text: str
    highlight: tuple[int, int]  # the supporting sentence, as offsets into the source file
    passage_id: int
    support: float = 0.0  # how likely this passage answers the question (rag.answer.abstention)
    features: tuple[float, ...] = ()  # the evidence `support` was computed from (not in JSON)

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(self.score, 6), "support": round(self.support, 4), **_cited(self)}


def _cited(item: Hit | Statement) -> dict[str, Any]:
    """The citation fields of a hit or a statement, as JSON, in one order for both."""
    return {"source": item.source, "title": item.title, "start": item.start, "end": item.end, "text": item.text,
            "highlight": [item.highlight[0], item.highlight[1]]}


@dataclass(frozen=True)
class Figure:
    """A figure in a source's words (a count, a time of day, a date): its exact span and the
    interval it states (counts: how many; times: minutes after midnight; dates: no value)."""

    kind: FigureKind
    start: int
    end: int
    text: str
    low: float | None
    high: float | None  # None above a low: open-ended ("over seventy")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "text": self.text, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Statement:
    """What one source says in answer to a question: its best supporting sentence, cited."""

    source: str
    title: str
    start: int
    end: int
    text: str  # == the source's text[start:end]
    highlight: tuple[int, int]  # the part that supports the question (here the whole sentence)
    score: float  # its support, as a hit's
    figures: tuple[Figure, ...] = ()  # figures of the kind the question asks for, offsets in the file
    group: int = 0  # statements of one group say the same thing
    also_reported_by: tuple[str, ...] = ()  # the other sources of its group

    def to_json(self) -> dict[str, Any]:
        return {
            **_cited(self),
            "score": round(self.score, 4),
            "figures": [f.to_json() for f in self.figures],
            "group": self.group,
            "also_reported_by": list(self.also_reported_by),
        }


@dataclass(frozen=True)
class Answer:
    """The result of one question: ranked hits, and whether the sources answer it at all."""

    question: str
    answered: bool  # support reached the threshold
    hits: tuple[Hit, ...]
    support: float = 0.0  # the best hit's support
    threshold: float = 0.5  # the index's abstention threshold
    missing: tuple[str, ...] = ()  # question words that no shown passage contains
    by_source: tuple[Statement, ...] = ()  # each source with evidence, best first
    figures_differ: bool = False  # the statements give figures that cannot all be right
    changed_sources: tuple[str, ...] = ()  # cited files that changed on disk since the index was built
    abstain: str = "lenient"  # the operating point the threshold belongs to (lenient or strict)

    @property
    def supporting_hits(self) -> tuple[Hit, ...]:
        """The hits whose support reaches the threshold: the passages that support an answer."""
        return tuple(h for h in self.hits if h.support >= self.threshold)

    @property
    def supporting(self) -> int:
        return len(self.supporting_hits)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "supporting": self.supporting,
            "support": round(self.support, 4),
            "threshold": round(self.threshold, 4),
            "abstain": self.abstain,
            "missing": list(self.missing),
            "hits": [h.to_json() for h in self.hits],
            "by_source": [s.to_json() for s in self.by_source],
            "figures_differ": self.figures_differ,
            "changed_sources": list(self.changed_sources),
        }
