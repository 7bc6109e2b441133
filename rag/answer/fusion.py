"""Stage 5c, signals -> one ranking score per candidate passage: pure numpy, no index access.

Four signals per candidate: the passage cosine, the best sentence cosine, BM25 scaled by the
best score the question could get, and the share of the question's idf weight that the
passage's best sentence holds. The default is a convex mix (README, "Fusion: measured");
reciprocal rank fusion of the passage cosine and BM25 is the baseline it is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FUSIONS = ("convex", "rrf")
MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Signals:
    """Per-candidate evidence, row-aligned."""

    dense: np.ndarray  # cosine of question and passage
    sentence: np.ndarray  # largest cosine of question and one of the passage's sentences
    lexical: np.ndarray  # BM25 / the question's best possible BM25
    coverage: np.ndarray  # share of the question's idf weight in the passage's best sentence


@dataclass(frozen=True)
class FusionConfig:
    """How signals are fused; checked when built so errors name the bad parameter."""

    mode: str = "hybrid"
    fusion: str = "convex"
    alpha: float = 0.6  # weight of the embedding side against BM25
    sentence_weight: float = 0.75  # share of the best sentence cosine within the embedding side
    coverage_weight: float = 0.4  # added weight of the best sentence's question-word coverage
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        for name in ("alpha", "sentence_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not 0.0 <= self.coverage_weight <= 10.0:
            raise ValueError(f"coverage_weight must be between 0 and 10, got {self.coverage_weight}")
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be >= 1, got {self.rrf_k}")


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best first (ties broken by position)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def rrf(dense: np.ndarray, lexical: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion of two score lists over the same candidates."""
    return 1.0 / (k + ranks(dense)) + 1.0 / (k + ranks(lexical))


def convex(signals: Signals, alpha: float, sentence_weight: float, coverage_weight: float) -> np.ndarray:
    """alpha * (passage and best-sentence cosine mix) + (1 - alpha) * scaled BM25, plus the
    weighted coverage of the best sentence."""
    embedding = (1.0 - sentence_weight) * signals.dense + sentence_weight * signals.sentence
    return alpha * embedding + (1.0 - alpha) * signals.lexical + coverage_weight * signals.coverage


def fuse(signals: Signals, config: FusionConfig) -> np.ndarray:
    """One float64 score per candidate, higher is better."""
    if config.mode == "dense":
        return signals.dense.astype(np.float64)
    if config.mode == "bm25":
        return signals.lexical.astype(np.float64)
    if config.fusion == "rrf":
        return rrf(signals.dense, signals.lexical, config.rrf_k)
    return convex(signals, config.alpha, config.sentence_weight, config.coverage_weight).astype(np.float64)
