"""Stage 4, vectors -> index/: the folder index (dense, BM25, passages), its build, its reader.
Takes Documents and an encoder; gives a built generation and an IndexReader over it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.index.build import BuildReport, build_index
    from rag.index.dense import dense_kind, top_rows
    from rag.index.encoders import build_encoder
    from rag.index.layout import (
        FORMAT_VERSION,
        IndexState,
        current_generation,
        inspect_index,
        read_manifest,
    )
    from rag.index.lexical import coverage, idf, present_by_owner
    from rag.index.locking import index_lock, is_locked
    from rag.index.passages import PassageTable
    from rag.index.reader import IndexReader
    from rag.index.reading import Index, open_index, open_with
    from rag.index.rules import existing_settings, same_sources, up_to_date
    from rag.index.terms import QUESTION_STOPWORDS, WORD, is_negated, stemmer
    from rag.index.writing import replace_manifest, write_index

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "BuildReport": "rag.index.build",
    "FORMAT_VERSION": "rag.index.layout",
    "Index": "rag.index.reading",
    "IndexReader": "rag.index.reader",
    "IndexState": "rag.index.layout",
    "PassageTable": "rag.index.passages",
    "QUESTION_STOPWORDS": "rag.index.terms",
    "WORD": "rag.index.terms",
    "build_encoder": "rag.index.encoders",
    "build_index": "rag.index.build",
    "coverage": "rag.index.lexical",
    "current_generation": "rag.index.layout",
    "dense_kind": "rag.index.dense",
    "existing_settings": "rag.index.rules",
    "idf": "rag.index.lexical",
    "index_lock": "rag.index.locking",
    "inspect_index": "rag.index.layout",
    "is_locked": "rag.index.locking",
    "is_negated": "rag.index.terms",
    "open_index": "rag.index.reading",
    "open_with": "rag.index.reading",
    "present_by_owner": "rag.index.lexical",
    "read_manifest": "rag.index.layout",
    "replace_manifest": "rag.index.writing",
    "same_sources": "rag.index.rules",
    "stemmer": "rag.index.terms",
    "top_rows": "rag.index.dense",
    "up_to_date": "rag.index.rules",
    "write_index": "rag.index.writing",
}
__all__ = [
    "BuildReport", "FORMAT_VERSION", "Index", "IndexReader", "IndexState", "PassageTable",
    "QUESTION_STOPWORDS", "WORD", "build_encoder", "build_index", "coverage",
    "current_generation", "dense_kind", "existing_settings", "idf", "index_lock",
    "inspect_index", "is_locked", "is_negated", "open_index", "open_with", "present_by_owner",
    "read_manifest", "replace_manifest", "same_sources", "stemmer", "top_rows", "up_to_date",
    "write_index",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
