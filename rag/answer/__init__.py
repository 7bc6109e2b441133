"""Stage 5, question -> hits: retrieval, fusion, evidence, figures, statements, abstention.
Takes a question and an IndexReader; gives an Answer of cited Hits (the Searcher wires the steps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.answer.freshness import SourceWatch, refresh_hint, with_changes
    from rag.answer.fusion import MODES, FusionConfig
    from rag.answer.searcher import CANDIDATES, Searcher
    from rag.answer.types import Answer, Figure, Hit, Statement

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "Answer": "rag.answer.types",
    "CANDIDATES": "rag.answer.searcher",
    "Figure": "rag.answer.types",
    "FusionConfig": "rag.answer.fusion",
    "Hit": "rag.answer.types",
    "MODES": "rag.answer.fusion",
    "Searcher": "rag.answer.searcher",
    "SourceWatch": "rag.answer.freshness",
    "Statement": "rag.answer.types",
    "refresh_hint": "rag.answer.freshness",
    "with_changes": "rag.answer.freshness",
}
__all__ = [
    "Answer", "CANDIDATES", "Figure", "FusionConfig", "Hit", "MODES", "Searcher",
    "SourceWatch", "Statement", "refresh_hint", "with_changes",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
