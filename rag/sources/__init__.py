"""Stage 1, seeds/ -> documents: find and decode source files, mark their article text.
Takes a folder; gives Documents (text as read, segments, title) and their sha256 digests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.sources.files import SOURCE_SUFFIXES, digests_of, load_documents, matching_digests
    from rag.sources.segments import iter_lines, plain_document, shorten

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "SOURCE_SUFFIXES": "rag.sources.files",
    "digests_of": "rag.sources.files",
    "iter_lines": "rag.sources.segments",
    "load_documents": "rag.sources.files",
    "matching_digests": "rag.sources.files",
    "plain_document": "rag.sources.segments",
    "shorten": "rag.sources.segments",
}
__all__ = [
    "SOURCE_SUFFIXES", "digests_of", "iter_lines", "load_documents", "matching_digests",
    "plain_document", "shorten",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
