"""Stage 5e, evidence -> "do the sources answer this?": each hit's abstention features.

The model (its features and coefficients) is rag.types.AbstentionModel; the default fitted
model lives in rag.models. Each hit gets a support in (0, 1) from its own evidence; the
answer's support is the best hit's.
"""

from __future__ import annotations

import numpy as np


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
