"""Stage 4 on Milvus: the same index in Milvus collections, built beside the live family.
Takes a `milvus:` target and Documents; gives a MilvusIndex with the folder reader's protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.index.milvus.build import (
        build_milvus,
        live_label,
        open_milvus,
        question_encoder_for,
        read_state,
    )
    from rag.index.milvus.client import MilvusTarget, parse_store

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "MilvusTarget": "rag.index.milvus.client",
    "build_milvus": "rag.index.milvus.build",
    "live_label": "rag.index.milvus.build",
    "open_milvus": "rag.index.milvus.build",
    "parse_store": "rag.index.milvus.client",
    "question_encoder_for": "rag.index.milvus.build",
    "read_state": "rag.index.milvus.build",
}
__all__ = [
    "MilvusTarget", "build_milvus", "live_label", "open_milvus", "parse_store",
    "question_encoder_for", "read_state",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
