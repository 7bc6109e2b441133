"""A fast, deterministic stand-in for the embedding model, for tests where it is beside the point."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from rag.encoding.encoder import normalize_rows

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


class HashEncoder:
    """Bag of hashed lower-case words: texts sharing words get similar unit vectors."""

    def __init__(self, name: str = "fake-hash", dimension: int = 64, max_seq_length: int = 256) -> None:
        self.name = name
        self.precision = "fp32"
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.passage_calls = 0
        self.passages_encoded = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_TOKEN.findall(t)) for t in texts]

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = zlib.crc32(word.encode("utf-8"))
            v[h % self.dimension] += 1.0 if (h >> 16) & 1 else -1.0
        return v

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return normalize_rows(np.stack([self._vector(t) for t in texts]).reshape(len(texts), self.dimension))

    def encode_passages(self, texts, spans, progress=False):
        self.passage_calls += 1
        self.passages_encoded += len(texts)
        vectors = self.encode_queries(texts) if texts else np.zeros((0, self.dimension), np.float32)
        span_vectors = [
            self.encode_queries([t[a:b] for a, b in s]) if s else np.zeros((0, self.dimension), np.float32)
            for t, s in zip(texts, spans)
        ]
        return vectors, span_vectors
