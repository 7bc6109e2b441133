"""The dense index: FAISS inner product over unit vectors, exact or IVF by size.

Search returns ids and scores; looking passages up is a separate step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` largest scores, best first (ties broken by index)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n < len(scores):
        kth = -np.partition(-scores, n - 1)[n - 1]  # the n-th largest score
        above = np.flatnonzero(scores > kth)
        part = np.concatenate([above, np.flatnonzero(scores == kth)[: n - len(above)]])
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


# Exact search up to this many passages; an inverted-file index above (README, "Scale").
FLAT_MAX = 50_000
IVF_NPROBE_SHARE = 5  # one list in this many is probed. With 8-bit codes and the search's exact
# rescoring of its 100 candidates, recall@10 against exact search on 1M synthetic passages with
# SQuAD's neighbour structure was 0.949 probing 512 of 4,000 lists and 0.985 probing 1,024
# (docs/speed.md, "Scale"); one in 5 (800) lies between.


class DenseIndex:
    """Nearest passages by inner product. An exact index is searched with numpy over the mapped
    vectors, so a query never imports FAISS; an approximate one (IVF) is FAISS's. The FAISS
    object itself is read on first use (updates and IVF searches)."""

    def __init__(self, path: Path, kind: str, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.path, self.kind, self._vectors, self._ids = path, kind, vectors, ids
        self._faiss: Any = None

    @property
    def exact(self) -> bool:
        return self.kind.startswith("IDMap2,Flat")

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def faiss(self) -> Any:
        """The FAISS index as written (loaded once)."""
        if self._faiss is None:
            import faiss

            self._faiss = faiss.read_index(str(self.path))
        return self._faiss

    def share_cores(self) -> None:
        """Search one question's inverted lists on all of OpenMP's threads (FAISS parallelizes
        over questions by default, which leaves a single question on one core). Reads the
        FAISS index now rather than at the first question."""
        if not self.exact:
            self.faiss().parallel_mode = 1

    def search(self, query: np.ndarray, k: int) -> np.ndarray:
        """Ids of the `k` nearest passages to one unit query vector, best first."""
        if self.exact:

            scores = np.asarray(self._vectors @ query.reshape(-1), dtype=np.float32)
            return self._ids[top_rows(scores, k)]
        # twice as many as asked, then the best k by (score, id): FAISS breaks ties between
        # equal 8-bit scores by the order its threads finish, and a search must not depend on that
        scores, ids = self.faiss().search(query.reshape(1, -1), 2 * k)
        found = ids[0] >= 0
        scores, ids = scores[0][found], ids[0][found]
        return ids[np.lexsort((ids, -scores))[:k]]


def dense_kind(n: int) -> str:
    """The FAISS index for `n` passages, as recorded in the manifest."""
    if n <= FLAT_MAX:
        return "IDMap2,Flat"
    return f"IVF{ivf_lists(n)},SQ8,nprobe={ivf_nprobe(ivf_lists(n))}"


def ivf_lists(n: int) -> int:
    return int(4 * np.sqrt(n))


def ivf_nprobe(lists: int) -> int:
    return max(32, lists // IVF_NPROBE_SHARE)


def build_dense(vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> Any:
    """Inner-product FAISS index over unit vectors keyed by int64 passage id: exact up to
    FLAT_MAX passages, IVF above (k-means lists, one in IVF_NPROBE_SHARE probed per query, vectors
    held as 8-bit codes: a quarter of the memory; the search rescores its candidates exactly
    from the mapped float vectors)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if n <= FLAT_MAX:
        index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    else:
        lists = ivf_lists(n)
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, lists, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(seed).choice(n, size=min(n, 64 * lists), replace=False)
        index.train(vectors[np.sort(sample)])
        index.nprobe = ivf_nprobe(lists)
    if n:
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index
