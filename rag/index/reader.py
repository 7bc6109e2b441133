"""What a Searcher reads, whichever store holds the index (rag.index's folder or rag.index.milvus).

A reader is one opened generation: its manifest and lexicon (the corpus statistics questions
are weighted with), the source texts as indexed, and `view`, which turns one question into
the `Index` of arrays the search stages work on and the rows of it to search (None: let
retrieval pick candidates): the folder store's whole mapped index, or a store's candidates
fetched into memory, all of them searched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Protocol

import numpy as np

from rag.index.lexical import Lexicon
from rag.index.reading import Index
from rag.types import Manifest, Passage, QueryTerms


class IndexReader(Protocol):
    manifest: Manifest

    @property
    def lexicon(self) -> Lexicon: ...

    @property
    def label(self) -> str: ...

    @property
    def texts(self) -> Mapping[str, str]: ...

    def __len__(self) -> int: ...

    def title(self, source: str) -> str: ...

    def source_names(self) -> tuple[str, ...]: ...

    def view(self, qvec: np.ndarray, terms: QueryTerms, pool: int,
             sources: Collection[str] | None) -> tuple[Index, np.ndarray | None]: ...

    def all_passages(self) -> Iterator[Passage]: ...
