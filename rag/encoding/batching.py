"""Serve many concurrent questions with one model: encode whatever is waiting in one batch.

Under load, questions that arrive while a batch is being encoded wait for the next one, so
batches form by themselves with no added delay for a lone question. Only the worker thread
touches the model, which also keeps the (not thread-safe) tokenizer to one thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from rag.encoding.encoder import Encoder, Span


class MicroBatchEncoder:
    """An Encoder whose query encoding is shared by concurrent callers."""

    def __init__(self, encoder: Encoder, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.inner = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.max_seq_length = encoder.max_seq_length
        self.precision = encoder.precision
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[str, Future[np.ndarray]]] = queue.Queue()
        self._lock = threading.Lock()  # builds and queries never share the model at once
        threading.Thread(target=self._work, name="rag-encoder", daemon=True).start()

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self._lock:
                    vectors = self.inner.encode_queries([text for text, _ in items])
                for (_, future), vector in zip(items, vectors):
                    future.set_result(vector)
            except BaseException as exc:  # hand the failure to every waiting caller
                for _, future in items:
                    future.set_exception(exc)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        futures: list[Future[np.ndarray]] = []
        for text in texts:
            future: Future[np.ndarray] = Future()
            self._queue.put((text, future))
            futures.append(future)
        if not futures:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([f.result() for f in futures])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return self.inner.count_tokens(texts)

    def encode_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        with self._lock:
            return self.inner.encode_passages(texts, spans, progress)
