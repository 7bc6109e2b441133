"""Read a Milvus generation: the same reader protocol as the folder index.

A question's candidates are fetched from the engine and scored by the same functions as the
folder store's, so answers agree. A reader whose family was dropped by a full rebuild gets
GenerationGone and is reopened on the live family by its caller.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from rag.errors import GenerationGone, RagError
from rag.index.lexical import LexicalIndex, candidate_bm25
from rag.index.milvus.client import FETCH, SENTENCE_SLOTS, _ids_filter, _quoted
from rag.index.milvus.families import is_missing_collection
from rag.index.milvus.store import MilvusStore
from rag.index.passages import ROW_DTYPE, PassageTable
from rag.types import Manifest, Passage, QueryTerms


@contextmanager
def replaced_means_gone(store: MilvusStore) -> Iterator[None]:
    """Turn "collection not found" while reading `store`'s family into GenerationGone: a full
    rebuild switched readers to a new family and dropped this one."""
    try:
        yield
    except RagError:
        raise
    except Exception as exc:  # noqa: BLE001 (pymilvus raises its own types)
        if is_missing_collection(exc):
            raise GenerationGone(f"the {store.target.describe()} was rebuilt while this question was answered; "
                                 "ask again") from None
        raise


class _Texts(Mapping[str, str]):
    """Source texts as indexed, read from Milvus when first needed and kept (a few hundred)."""

    def __init__(self, store: MilvusStore, manifest: Manifest, keep: int = 256) -> None:
        self._store, self._manifest, self._keep = store, manifest, keep
        self._cache: OrderedDict[str, str] = OrderedDict()

    def __getitem__(self, source: str) -> str:
        if source in self._cache:
            self._cache.move_to_end(source)
            return self._cache[source]
        record = self._manifest.sources.get(source)
        with replaced_means_gone(self._store):
            text = self._store.text(record.sha256) if record else None
        if text is None:
            raise KeyError(source)
        self._cache[source] = text
        if len(self._cache) > self._keep:
            self._cache.popitem(last=False)
        return text

    def __iter__(self) -> Iterator[str]:
        return iter(self._manifest.sources)

    def __len__(self) -> int:
        return len(self._manifest.sources)


class MilvusIndex:
    """An opened generation of a Milvus index: what a Searcher reads (see rag.index.reader)."""

    def __init__(self, store: MilvusStore, gen: int, manifest: Manifest) -> None:
        self.store, self.gen, self.manifest = store, gen, manifest
        with replaced_means_gone(store):
            self.lexicon = store.lexicon(gen)
        self.texts: Mapping[str, str] = _Texts(store, manifest)
        self.label = f"{store.target.collection}@{gen}"
        self._shas = {source: record.sha256 for source, record in manifest.sources.items()}

    def __len__(self) -> int:
        return self.manifest.passages

    def title(self, source: str) -> str:
        record = self.manifest.sources.get(source)
        return record.title if record else source

    def source_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.sources)

    def view(self, qvec: np.ndarray, terms: QueryTerms, pool: int, sources: Collection[str] | None) -> tuple[Any, np.ndarray | None]:
        """The candidates of one question as a small in-memory index (rows in id order), all of
        them searched: the union of the engine's dense and BM25 top `pool` (one hybrid
        request), or every passage of `sources` when the search is limited to them."""
        with replaced_means_gone(self.store):
            return self._view(qvec, terms, pool, sources)

    def _view(self, qvec: np.ndarray, terms: QueryTerms, pool: int, sources: Collection[str] | None) -> tuple[Any, np.ndarray | None]:
        from pymilvus import AnnSearchRequest, RRFRanker

        visible = f"gen <= {self.gen}"
        if sources:
            ids = [int(r["id"]) for r in self.store._query_all(
                self.store.passages_name, f"{visible} and source in {_quoted(sources)}", ["id"])]
        else:
            requests = [AnnSearchRequest([qvec.tolist()], "vector", {"metric_type": "IP"}, pool, expr=visible)]
            if terms.stems:
                requests.append(AnnSearchRequest([" ".join(terms.stems)], "bm25", {"metric_type": "BM25"}, pool, expr=visible))
            found = self.store.client.hybrid_search(self.store.passages_name, requests, RRFRanker(60),
                                                    limit=pool * len(requests), output_fields=["id"])
            ids = sorted({int(hit["id"]) for hit in found[0]})
        subset = self._subset(ids)
        return subset, np.arange(len(subset.passages))

    def _subset(self, ids: Sequence[int]) -> Any:
        from rag.index.dense import DenseIndex
        from rag.index.reading import Index

        fields = ["id", "source", "sha", "start", "end", "context", "sentences", "sentence_stems", "stems", "vector"]
        rows: list[dict[str, Any]] = []
        for lo in range(0, len(ids), FETCH):
            rows.extend(self.store.client.query(self.store.passages_name, filter=_ids_filter("id", ids[lo : lo + FETCH]),
                                                output_fields=fields))
        rows = sorted((r for r in rows if self._shas.get(r["source"]) == r["sha"]), key=lambda r: int(r["id"]))
        sentence_vectors: dict[int, list[float]] = {}
        keys = [int(r["id"]) * SENTENCE_SLOTS + j for r in rows for j in range(len(r["sentences"]))]
        for lo in range(0, len(keys), FETCH):
            for s in self.store.client.get(self.store.sentences_name, ids=keys[lo : lo + FETCH], output_fields=["vector"]):
                sentence_vectors[int(s["id"])] = s["vector"]
        if len(sentence_vectors) != len(keys):
            raise RagError(f"the {self.store.target.describe()} is damaged (sentence vectors are missing); "
                           "rebuild it with: rag index --full")
        sources = sorted({r["source"] for r in rows})
        contexts = sorted({r["context"] for r in rows})
        source_at = {s: i for i, s in enumerate(sources)}
        context_at = {c: i for i, c in enumerate(contexts)}
        table = np.zeros(len(rows), dtype=ROW_DTYPE)
        spans: list[list[int]] = []
        term_lists: list[list[str]] = []
        for i, r in enumerate(rows):
            table[i] = (int(r["id"]), source_at[r["source"]], int(r["start"]), int(r["end"]), len(spans),
                        len(r["sentences"]), context_at[r["context"]])
            spans.extend(r["sentences"])
            term_lists.extend(r["sentence_stems"])
        d = self.manifest.dimension
        vectors = np.array([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), d)
        sentence_matrix = np.array([sentence_vectors[k] for k in keys], dtype=np.float32).reshape(len(keys), d)
        vocab = self.lexicon.vocab
        lists = [sorted({vocab[s] for s in stems if s in vocab}) for stems in term_lists]
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in lists], out=offsets[1:])
        flat = np.array([t for x in lists for t in x], dtype=np.int32)
        terms, owners, scores = candidate_bm25([r["stems"].split() for r in rows], self.lexicon)
        passages = PassageTable(table, np.array(spans, dtype=np.int64).reshape(len(spans), 2), sources, contexts, self.texts)
        return Index(
            path=None,  # type: ignore[arg-type]
            manifest=self.manifest,
            passages=passages,
            vectors=vectors,
            sentence_vectors=sentence_matrix,
            dense=DenseIndex(None, "IDMap2,Flat", vectors, passages.ids),  # type: ignore[arg-type]
            lexical=LexicalIndex.from_entries(terms, owners, scores, self.lexicon, len(rows)),
            sentence_terms=flat,
            sentence_term_offsets=offsets,
        )

    def all_passages(self) -> Iterator[Passage]:
        """Every passage of the generation (for evaluation), in id order."""
        with replaced_means_gone(self.store):
            rows = list(self.store._query_all(self.store.passages_name, f"gen <= {self.gen}",
                                              ["id", "source", "sha", "start", "end", "text", "context", "sentences"]))
        for r in sorted(rows, key=lambda r: int(r["id"])):
            if self._shas.get(r["source"]) == r["sha"]:
                yield Passage(source=r["source"], start=int(r["start"]), end=int(r["end"]), text=r["text"],
                              context=r["context"], sentences=tuple((int(a), int(b)) for a, b in r["sentences"]),
                              id=int(r["id"]), sentence_row=0)
