"""The ONNX copy at question and build time: onnxruntime plus the tokenizers library, no torch."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoding.encoder import Span, encode_each, normalize_rows
from rag.encoding.recipes import ONNX_DIR

# How long a session's idle threads wait for more work before they sleep. onnxruntime's own
# default spins them much longer, through the search that follows a question's encoding, and
# on two cores they took the second core from that search: warm `ask` took twice as long
# (docs/speed.md, "Queries").
SPIN_KEY, SPIN_US = "session.intra_op.spin_duration_us", 30


class OnnxEncoder:
    """The Encoder contract on an exported copy of a model, run by onnxruntime."""

    def __init__(self, folder: Path, name: str, batch_size: int = 16) -> None:
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.folder, self.config = folder, config
        self.name, self.batch_size = name, batch_size
        self.precision = str(config.get("precision", "fp32"))
        self.dimension = int(config["dimension"])
        self.max_seq_length = int(config["max_seq_length"])
        self._pooling, self._inputs = config["pooling"], list(config["inputs"])
        # int8: scales are set per run, so one text per run keeps each vector a function of its
        # own text; a copy without a mask input cannot run a padded batch at all
        self.one_per_run = self.precision == "int8" or "attention_mask" not in self._inputs
        self._spec = (folder / "tokenizer.json").read_text(encoding="utf-8")
        self._tokenizer = Tokenizer.from_str(self._spec)
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.enable_padding(pad_id=int(config["pad_id"]), pad_token=str(config["pad_token"]))
        self._session = self._new_session(min(os.cpu_count() or 1, 4))  # questions: one text, every core

    def _new_session(self, threads: int) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry(SPIN_KEY, str(SPIN_US))
        return onnxruntime.InferenceSession(str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    @cached_property
    def _workers(self) -> list[Any]:
        """One single-threaded session per core (up to 4), for passages: on a small CPU, whole
        texts run side by side keep the cores busier than one text's matrices split between
        them (docs/speed.md, "Build")."""
        return [self._new_session(1) for _ in range(min(os.cpu_count() or 1, 4))]

    @cached_property
    def _counter(self) -> Any:
        """A second tokenizer without truncation or padding, for chunking only (a question
        never needs it, so `rag ask` does not pay for it)."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self._spec)
        counter.no_truncation()
        counter.no_padding()
        return counter

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch_fast(list(texts), add_special_tokens=False)] if texts else []

    def _run(self, texts: Sequence[str], session: Any = None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """(token embeddings, attention mask, encodings) of one padded batch."""
        if len(texts) > 1 and self.one_per_run:
            raise ValueError(f"this {self.precision} copy runs one text at a time, got {len(texts)}")
        # one text (every passage, every int8 question) without the batch call's hand-off to
        # the tokenizer's thread pool, which cost more than tokenizing it
        encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return (session or self._session).run(None, {n: feeds[n] for n in self._inputs})[0], mask, encodings

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            return tokens[:, 0]
        weights = mask[..., None].astype(np.float32)
        return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) float32 unit rows, as sentence-transformers would give them."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        if self.one_per_run:
            return normalize_rows(np.concatenate([self._pool(*self._run([t])[:2]) for t in texts]))
        tokens, mask, _ = self._run(texts)
        return normalize_rows(self._pool(tokens, mask))

    def encode_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and each passage's span vectors, from one pass (see rag.encoding.encoder):
        one passage per run (no padding, and int8 vectors that do not depend on their
        neighbours in a batch), on one session per core."""
        workers = self._workers

        def encode_one(text: str, worker: int) -> tuple[np.ndarray, np.ndarray, Sequence[Sequence[int]]]:
            tokens, mask, encodings = self._run([text], workers[worker])
            return self._pool(tokens, mask)[0], tokens[0], encodings[0].offsets

        return encode_each(texts, spans, self.dimension, encode_one, len(workers), progress)


def open_onnx_encoder(generation: Path, name: str) -> OnnxEncoder | None:
    """The generation's ONNX copy of its model, or None when it has none or onnxruntime is
    missing; a damaged copy is a one-line error saying how to rebuild."""
    folder = generation / ONNX_DIR
    if not folder.is_dir():
        return None
    try:
        return OnnxEncoder(folder, name)
    except ImportError:
        return None
    except Exception as exc:  # noqa: BLE001 (onnxruntime and tokenizers raise their own types)
        from rag.errors import RagError

        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise RagError(
            f"the index's copy of the model in {folder} is damaged ({detail}); rebuild it with: rag index --full"
        ) from None
