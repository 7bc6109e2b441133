"""The shipped abstention models, one per embedding model, as plain JSON beside this file."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

from rag.types import AbstentionModel

_DEFAULT_FILES = {"sentence-transformers/all-MiniLM-L6-v2": "abstention-all-MiniLM-L6-v2.json"}
_FALLBACK = "abstention-all-MiniLM-L6-v2.json"


def default_model(model_name: str) -> AbstentionModel:
    """The shipped model for an embedding model (fitted for all-MiniLM-L6-v2; other embedding
    models start from it until `rag eval --calibrate` fits their own)."""
    name = _DEFAULT_FILES.get(model_name, _FALLBACK)
    data = json.loads(resources.files("rag.models").joinpath(name).read_text("utf-8"))
    fitted = AbstentionModel.from_json(data)
    if model_name not in _DEFAULT_FILES:
        return replace(fitted, fitted_on=f"{fitted.fitted_on} (for all-MiniLM-L6-v2; not fitted for {model_name})")
    return fitted


def model_for(stored: AbstentionModel, embedding_model: str) -> AbstentionModel:
    """The model an index answers with: its own calibration when it has one, else the shipped
    default (so that a newer release's default applies without rebuilding)."""
    return stored if stored.calibrated else default_model(embedding_model)
