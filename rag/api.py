"""The Python API over either store, for scripts and notebooks:

    import rag
    idx = rag.open("index")                                 # a folder index
    idx = rag.open("milvus:archive.db", collection="rag")   # Milvus Lite (or milvus://HOST:PORT)
    answer = idx.ask("How many people died?", k=5)          # what `rag ask --json` prints: answer.to_json()
    answers = idx.ask_many(["...", "..."], k=5)
    rag.build("seeds", "index")                             # or rag.build("seeds", "milvus:archive.db")

Everything here goes through rag.locations, like the CLI, so both stores answer alike.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answer import Answer
from rag.locations import (
    Location,
    build_at,
    encoder_for_build,
    location,
    on_live,
    open_searcher,
    settings_at,
)
from rag.types import Manifest

if TYPE_CHECKING:
    from rag.answer import Searcher
    from rag.index import BuildReport


def _where(index: str | os.PathLike[str], collection: str) -> Location:
    spec = os.fspath(index)
    return location("index", spec, collection) if spec.startswith("milvus:") else location(spec, None, collection)


class OpenIndex:
    """One opened index and the copy of the model its passages were encoded with."""

    def __init__(self, where: Location, model: str | None = None) -> None:
        from rag.answer import SourceWatch

        self.where = where
        self._model = model  # when given, the index must have been built with it
        self._searcher = open_searcher(where, model)
        self._watch = SourceWatch(self._searcher.index.manifest)

    def _reopen(self) -> Searcher:
        """The live generation, when a full rebuild removed the one held (Milvus)."""
        from rag.answer import SourceWatch

        self._searcher = open_searcher(self.where, self._model)
        self._watch = SourceWatch(self._searcher.index.manifest)
        return self._searcher

    @property
    def manifest(self) -> Manifest:
        return self._searcher.index.manifest

    def ask(self, question: str, k: int = 5, sources: Collection[str] | None = None, abstain: str = "lenient") -> Answer:
        """Ranked, cited passages, what each source says and whether the sources answer;
        `answer.to_json()` is exactly what `rag ask --json` prints. `abstain`: "lenient" (answer
        when in doubt, the default) or "strict" (abstain when in doubt)."""
        return self.ask_many([question], k, sources, abstain)[0]

    def ask_many(self, questions: Sequence[str], k: int = 5, sources: Collection[str] | None = None,
                 abstain: str = "lenient") -> list[Answer]:
        """Answers in order (the questions are encoded together)."""
        from rag.answer import with_changes

        def ask(searcher: Searcher) -> list[Answer]:
            return [with_changes(a, self._watch) for a in searcher.ask_many(list(questions), k, sources, abstain)]

        return on_live(lambda: self._searcher, self._reopen, ask)

    def __repr__(self) -> str:
        return f"rag.open({str(self.where)!r}): {self.manifest.passages} passages from {len(self.manifest.sources)} sources"


def open(index: str | os.PathLike[str] = "index", collection: str = "rag") -> OpenIndex:  # noqa: A001
    """Open an index: a folder, `milvus:PATH.db` (Milvus Lite) or `milvus://HOST:PORT`."""
    return OpenIndex(_where(index, collection))


def build(sources: str | os.PathLike[str], index: str | os.PathLike[str] = "index", collection: str = "rag",
          full: bool = False, precision: str | None = None, model: str | None = None, progress: bool = False) -> BuildReport:
    """Build or update the index from a folder of .txt/.md articles (only what changed)."""
    from rag.sources import load_documents

    where = _where(index, collection)
    docs = load_documents(Path(sources))
    kept, config, _ = settings_at(where)
    encoder = encoder_for_build(where, model or kept, precision)
    return build_at(where, Path(sources), encoder, docs, config, full=full, progress=progress,
                    precision=precision)
