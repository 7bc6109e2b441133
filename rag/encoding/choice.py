"""The one rule for which encoder a question uses: the index's ONNX copy, else the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.encoding.onnx import open_onnx_encoder


def question_encoder(generation: Path, model: str, loaded: Any = None) -> Any:
    """What encodes questions for a generation: its ONNX copy of the model when it has one
    (no torch import), else `loaded` or a freshly loaded model."""
    onnx = open_onnx_encoder(generation, model)
    if onnx is not None:
        return onnx
    if loaded is not None:
        return loaded
    from rag.encoding.model import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model)
