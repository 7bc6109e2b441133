"""Stage 5e, evidence -> "do the sources answer this?": a small logistic model over features
of each shown passage, and a threshold.

Each hit gets a support in (0, 1) from its own evidence; the answer's support is the best
hit's, and the question counts as answered when that reaches the index's threshold. The
model's coefficients are plain JSON (in the index manifest, and for the default model in
`rag/models/`), fitted by `rag eval --calibrate` or `benchmarks/fit_abstention.py`; nothing
is pickled. Features (README, "Abstention"):

  sentence      largest cosine of the question and a shown sentence of the passage
  passage       cosine of the question and the passage
  negation      1 when the question negates ("not", "n't"...) and the marked sentence does not
  missing       rarity (idf / the largest idf) of the rarest question word the passage lacks;
                a word the index has never seen counts as the rarest
  unseen_share  share of the question's content words the index has never seen
  score_gap     the passage's ranking score minus the top passage's (0 for the top hit)
  coverage      share of the question's idf weight that the marked sentence holds
  missing_name  1 when a question word that looks like a name or figure (capitalised after the
                first word, or holding a digit) is absent from the passage
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import numpy as np

FEATURES = ("sentence", "passage", "negation", "missing", "unseen_share", "score_gap", "coverage", "missing_name")


@dataclass(frozen=True)
class AbstentionModel:
    """support = 1 / (1 + exp(-(bias + weights . features))); answered when support >= threshold."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    fitted_on: str  # what the weights and threshold were fitted on, in words
    features: tuple[str, ...] = FEATURES
    calibrated: bool = False  # fitted on this index's own questions (rag eval --calibrate)

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.features):
            raise ValueError(f"weights has {len(self.weights)} values for {len(self.features)} features")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown abstention feature(s) {sorted(unknown)}; known: {', '.join(FEATURES)}")
        if not all(math.isfinite(v) for v in (*self.weights, self.bias)):
            raise ValueError("abstention weights and bias must be finite numbers")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")

    def support(self, features: np.ndarray) -> np.ndarray:
        """Support of each row of `features` (columns in FEATURES order)."""
        columns = [FEATURES.index(f) for f in self.features]
        # a row-wise sum, not a matrix product: a row's support must not depend on how many
        # rows are scored with it (BLAS may sum a batch in another order)
        z = self.bias + (np.asarray(features, dtype=np.float64)[:, columns] * np.asarray(self.weights)).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 6),
            "fitted_on": self.fitted_on,
            "calibrated": self.calibrated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AbstentionModel:
        """The model from its JSON; a missing or mistyped field is a ValueError naming it."""
        weights, features = data.get("weights"), data.get("features")
        if not isinstance(weights, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise ValueError("field 'abstention.weights' must be a list of numbers")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("field 'abstention.features' must be a list of feature names")
        for name, kinds in (("bias", (int, float)), ("threshold", (int, float)), ("fitted_on", (str,)), ("calibrated", (bool,))):
            if name in data and (not isinstance(data[name], kinds) or (isinstance(data[name], bool) and bool not in kinds)):
                raise ValueError(f"field 'abstention.{name}' has the wrong type")
        return cls(
            weights=tuple(float(w) for w in weights),
            bias=float(data.get("bias", 0.0)),
            threshold=float(data["threshold"]) if "threshold" in data else 0.5,
            fitted_on=str(data.get("fitted_on", "")),
            features=tuple(features),
            calibrated=bool(data.get("calibrated", False)),
        )

    def with_threshold(self, threshold: float) -> AbstentionModel:
        return replace(self, threshold=float(threshold))


def hit_features(
    sentence: np.ndarray, passage: np.ndarray, question_negated: bool, sentence_negated: np.ndarray, missing: np.ndarray,
    unseen_share: float, score_gap: np.ndarray, coverage: np.ndarray, missing_name: np.ndarray,
) -> np.ndarray:
    """Features of hits (or of statements: a sentence in its passage), one row each, in FEATURES
    order; array arguments are per row."""
    negation = np.asarray(question_negated, dtype=bool) & ~np.asarray(sentence_negated, dtype=bool)
    columns = [sentence, passage, negation, missing, unseen_share, score_gap, coverage, missing_name]
    out = np.empty((max(np.size(c) for c in columns), len(columns)))
    for j, column in enumerate(columns):
        out[:, j] = column  # a scalar fills its column
    return out


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
