"""Stage 3, chunks -> vectors: the encoder contract and the helpers every encoder shares.

The vector layer downstream sees only float32 matrices with unit rows. One forward pass per
passage yields both the passage vector and a vector for each of its sentences (the mean of
that sentence's contextual token embeddings), so picking the supporting sentence at query
time is a dot product, not another model call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

Span = tuple[int, int]
PROGRESS_MIN_PASSAGES = 256  # shorter builds finish before a progress bar would help


class Encoder(Protocol):
    """What the pipeline needs of an embedding model."""

    name: str
    dimension: int
    max_seq_length: int
    precision: str  # "fp32", or "int8" for a quantized copy: passages and questions must agree

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word-pieces of each text, without special tokens."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) float32, unit rows."""
        ...

    def encode_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors (n, dimension) and, per passage, one unit row per span of its text."""
        ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def encode_in_batches(
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    dimension: int,
    batch_size: int,
    encode_batch: Callable[[list[str]], Iterable[tuple[np.ndarray, np.ndarray, Sequence[Sequence[int]]]]],
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Passage vectors and each passage's span vectors. Texts are batched by length (little
    padding per batch) and the batches run in a fixed shuffled order, so the progress line's
    rate and time left hold from the start. `encode_batch` gives, per text of a batch, its
    pooled vector, its token embeddings and their character offsets (special and padding
    tokens excluded or empty)."""
    from rag.encoding.progress import Progress

    texts = list(texts)
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    span_vectors: list[np.ndarray] = [np.zeros((0, dimension), np.float32)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [order[lo : lo + batch_size] for lo in range(0, len(order), batch_size)]
    batches = [batches[b] for b in np.random.default_rng(0).permutation(len(batches))]
    with Progress(len(texts), "embedding", "passage", enabled=progress and len(texts) >= PROGRESS_MIN_PASSAGES) as bar:
        for idx in batches:
            for i, (vector, tokens, offsets) in zip(idx, encode_batch([texts[i] for i in idx])):
                vectors[i] = vector
                span_vectors[i] = pool_spans(tokens, offsets, spans[i])
            bar.update(len(idx))
    return normalize_rows(vectors), span_vectors


def encode_each(
    texts: Sequence[str],
    spans: Sequence[Sequence[Span]],
    dimension: int,
    encode_one: Callable[[str, int], tuple[np.ndarray, np.ndarray, Sequence[Sequence[int]]]],
    workers: int,
    progress: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """As `encode_in_batches`, one text per call of `encode_one(text, worker)`, on `workers`
    threads (each with its own worker number, so each can own a model session)."""
    import itertools
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from rag.encoding.progress import Progress

    texts = list(texts)
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    span_vectors: list[np.ndarray] = [np.zeros((0, dimension), np.float32)] * len(texts)
    local, numbers = threading.local(), itertools.count()

    def work(i: int) -> None:
        if not hasattr(local, "worker"):
            local.worker = next(numbers)
        vector, tokens, offsets = encode_one(texts[i], local.worker)
        vectors[i] = vector
        span_vectors[i] = pool_spans(tokens, offsets, spans[i])

    order = np.random.default_rng(0).permutation(len(texts)).tolist()  # a steady rate for the progress line
    with Progress(len(texts), "embedding", "passage", enabled=progress and len(texts) >= PROGRESS_MIN_PASSAGES) as bar, \
            ThreadPoolExecutor(max(1, workers)) as pool:
        for _ in pool.map(work, order):
            bar.update(1)
    return normalize_rows(vectors), span_vectors


def _as_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)


def pool_spans(tokens: np.ndarray, offsets: Sequence[Sequence[int]], spans: Sequence[Span]) -> np.ndarray:
    """Unit mean of the token embeddings overlapping each character span.

    Special tokens have empty offsets and are never pooled. A span with no token (cut off by
    truncation) falls back to the mean of all tokens.
    """
    starts = np.array([o[0] for o in offsets])
    ends = np.array([o[1] for o in offsets])
    real = ends > starts
    fallback = tokens[real].mean(axis=0) if real.any() else tokens.mean(axis=0)
    rows = []
    for a, b in spans:
        mask = real & (starts < b) & (ends > a)
        rows.append(tokens[mask].mean(axis=0) if mask.any() else fallback)
    return normalize_rows(np.stack(rows)) if rows else np.zeros((0, tokens.shape[1]), np.float32)
