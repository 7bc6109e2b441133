"""Stage 2, documents -> chunks: sentence-aware passages with overlap, sized in word-pieces.
Takes Documents and a ChunkingConfig; gives Chunks whose offsets slice the source text exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.chunking.packing import chunk_documents

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "chunk_documents": "rag.chunking.packing",
}
__all__ = [
    "chunk_documents",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
