"""Stage 3, chunks -> vectors: the encoder contract, sentence-transformers, its ONNX copy.
Takes texts (and sentence spans); gives float32 unit vectors for passages, sentences and questions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.lazy import exported_on_first_use

if TYPE_CHECKING:
    from rag.encoding.batching import MicroBatchEncoder
    from rag.encoding.choice import question_encoder
    from rag.encoding.copies import cache_root, cached_copy, keep_copy
    from rag.encoding.encoder import Encoder
    from rag.encoding.export import ExportUnavailable
    from rag.encoding.model import SentenceTransformerEncoder, resolve_model
    from rag.encoding.onnx import OnnxEncoder, open_onnx_encoder
    from rag.encoding.recipes import (
        DEFAULT_PRECISION,
        ONNX_DIR,
        PRECISIONS,
        current_recipe,
        is_current_recipe,
        recipe_key,
        recipe_of,
    )

# name -> the module that defines it, imported on first use so that importing the
# package stays light (the command line imports only what a command needs)
_EXPORTS = {
    "DEFAULT_PRECISION": "rag.encoding.recipes",
    "Encoder": "rag.encoding.encoder",
    "ExportUnavailable": "rag.encoding.export",
    "MicroBatchEncoder": "rag.encoding.batching",
    "ONNX_DIR": "rag.encoding.recipes",
    "OnnxEncoder": "rag.encoding.onnx",
    "PRECISIONS": "rag.encoding.recipes",
    "SentenceTransformerEncoder": "rag.encoding.model",
    "cache_root": "rag.encoding.copies",
    "cached_copy": "rag.encoding.copies",
    "current_recipe": "rag.encoding.recipes",
    "is_current_recipe": "rag.encoding.recipes",
    "keep_copy": "rag.encoding.copies",
    "open_onnx_encoder": "rag.encoding.onnx",
    "question_encoder": "rag.encoding.choice",
    "recipe_key": "rag.encoding.recipes",
    "recipe_of": "rag.encoding.recipes",
    "resolve_model": "rag.encoding.model",
}
__all__ = [
    "DEFAULT_PRECISION", "Encoder", "ExportUnavailable", "MicroBatchEncoder", "ONNX_DIR",
    "OnnxEncoder", "PRECISIONS", "SentenceTransformerEncoder", "cache_root", "cached_copy",
    "current_recipe", "is_current_recipe", "keep_copy", "open_onnx_encoder",
    "question_encoder", "recipe_key", "recipe_of", "resolve_model",
]


__getattr__ = exported_on_first_use(__name__, _EXPORTS)
