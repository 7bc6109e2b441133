"""Stage 4c, passages <-> index/: the passages of a generation as columns, not objects.

A million passages as Python objects would cost gigabytes and a long start; as columns they
are a few arrays (mapped from disk) and two short string lists, and a passage's text is a
slice of its source's text as indexed (which each generation keeps anyway). `PassageTable`
is a read-only sequence of `Passage`, built on demand, with the columns the search reads
directly.

Files: passages.npy (one structured row per passage, ascending id), sentence_spans.npy
((sentences, 2) absolute offsets, in sentence-vector row order) and passage_strings.json
(the source names and context lines the rows point into).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.types import Passage, Span

ROWS = "passages.npy"
SPANS = "sentence_spans.npy"
STRINGS = "passage_strings.json"
ROW_DTYPE = np.dtype([("id", "<i8"), ("source", "<i4"), ("start", "<i8"), ("end", "<i8"), ("sentence_row", "<i8"),
                      ("sentence_count", "<i4"), ("context", "<i4")])


def _mapped(path: Path) -> np.ndarray:
    """The array in `path`, mapped from disk, as a plain ndarray view (np.memmap's own
    indexing costs a Python call per row)."""
    return np.asarray(np.load(path, allow_pickle=False, mmap_mode="r"))


class PassageTable(Sequence[Passage]):
    """The passages of one generation, row-aligned with its vectors."""

    def __init__(self, rows: np.ndarray, spans: np.ndarray, sources: Sequence[str], contexts: Sequence[str],
                 texts: Mapping[str, str]) -> None:
        self.rows, self.spans = rows, spans
        self.sources, self.contexts, self.texts = tuple(sources), tuple(contexts), texts
        # each column once as its own contiguous array: a field of the mapped rows is a strided
        # view, which numpy copies whole on every searchsorted
        self.ids = np.ascontiguousarray(rows["id"])
        self.source_index = np.ascontiguousarray(rows["source"])
        self.sentence_starts = np.ascontiguousarray(rows["sentence_row"])
        self.sentence_counts = np.asarray(rows["sentence_count"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, row: int) -> Passage:  # type: ignore[override]
        if not -len(self) <= row < len(self):
            raise IndexError(row)
        r = self.rows[row]
        source = self.sources[int(r["source"])]
        start, end = int(r["start"]), int(r["end"])
        return Passage(
            source=source,
            start=start,
            end=end,
            text=self.texts[source][start:end],
            context=self.contexts[int(r["context"])],
            sentences=self.sentences(row),
            id=int(r["id"]),
            sentence_row=int(r["sentence_row"]),
        )

    def __iter__(self) -> Iterator[Passage]:
        return (self[row] for row in range(len(self)))

    def source(self, row: int) -> str:
        return self.sources[int(self.source_index[row])]

    def sentences(self, row: int) -> tuple[Span, ...]:
        first = int(self.sentence_starts[row])
        return tuple((a, b) for a, b in self.spans[first : first + int(self.sentence_counts[row])].tolist())

    def rows_of(self, sources: Sequence[str]) -> np.ndarray:
        """Rows of the passages of the named sources (ascending)."""
        wanted = [i for i, name in enumerate(self.sources) if name in set(sources)]
        return np.flatnonzero(np.isin(self.source_index, wanted))

    @classmethod
    def from_passages(cls, passages: Sequence[Passage], sentence_count: int, texts: Mapping[str, str]) -> PassageTable:
        """Columns of `passages` (in id order); `sentence_count` is the sentence-vector rows."""
        sources = sorted({p.source for p in passages})
        contexts = sorted({p.context for p in passages})
        source_at = {s: i for i, s in enumerate(sources)}
        context_at = {c: i for i, c in enumerate(contexts)}
        rows = np.zeros(len(passages), dtype=ROW_DTYPE)
        spans = np.zeros((sentence_count, 2), dtype=np.int64)
        for i, p in enumerate(passages):
            rows[i] = (p.id, source_at[p.source], p.start, p.end, p.sentence_row, len(p.sentences), context_at[p.context])
            spans[p.sentence_row : p.sentence_row + len(p.sentences)] = p.sentences
        return cls(rows, spans, sources, contexts, texts)

    def save(self, folder: Path) -> None:
        np.save(folder / ROWS, np.asarray(self.rows), allow_pickle=False)
        np.save(folder / SPANS, np.asarray(self.spans), allow_pickle=False)
        (folder / STRINGS).write_text(json.dumps({"sources": list(self.sources), "contexts": list(self.contexts)},
                                                 ensure_ascii=False), "utf-8")

    @classmethod
    def load(cls, folder: Path, texts: Mapping[str, str]) -> PassageTable:
        """The table of a generation, checked: every row points at a known source and context,
        inside its text, at sentences that exist (a ValueError says which file is wrong)."""
        rows = _mapped(folder / ROWS)
        spans = _mapped(folder / SPANS)
        strings = json.loads((folder / STRINGS).read_text("utf-8"))
        if rows.dtype != ROW_DTYPE:
            raise ValueError(f"{ROWS} has the wrong columns")
        if spans.ndim != 2 or spans.shape[1:] != (2,):
            raise ValueError(f"{SPANS} must be (sentences, 2)")
        sources, contexts = strings.get("sources"), strings.get("contexts") if isinstance(strings, dict) else None
        if not isinstance(sources, list) or not isinstance(contexts, list) or not all(isinstance(x, str) for x in sources + contexts):
            raise ValueError(f"{STRINGS} must hold lists of source names and contexts")
        table = cls(rows, spans, sources, contexts, texts)
        if len(table):
            source, context = table.source_index, np.asarray(rows["context"])
            starts, ends = np.asarray(rows["start"]), np.asarray(rows["end"])
            lengths = np.array([len(texts.get(s, "")) for s in sources])
            if source.min() < 0 or source.max() >= len(sources) or context.min() < 0 or context.max() >= len(contexts):
                raise ValueError(f"{ROWS} points at sources or contexts that {STRINGS} does not have")
            if any(s not in texts for s in sources) or np.any(starts > ends) or np.any(starts < 0) or np.any(ends > lengths[source]):
                raise ValueError(f"{ROWS} cites spans outside the indexed texts")
            if np.any(table.sentence_starts < 0) or np.any(table.sentence_starts + table.sentence_counts > len(spans)):
                raise ValueError(f"{ROWS} points at sentences that {SPANS} does not have")
            if np.any(np.diff(table.ids) <= 0):
                raise ValueError(f"{ROWS} must list passages in ascending id order")
        return table
