"""Stage 2b, sentence units -> chunks: sentence-aware passages with overlap.

Everything here is a pure function of text and offsets: a segment's units are packed into
passages of at most the configured word-pieces, neighbours sharing `overlap` units, with the
budget balanced so that a segment does not end in a scrap; the title and section headings
become each passage's context line, shortened to fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rag.chunking.sentences import (
    Span,
    TokenCounter,
    count_batched,
    sentence_units,
    split_long_unit,
)
from rag.sources import shorten
from rag.types import Chunk, ChunkingConfig, Document


def pack(counts: Sequence[int], max_tokens: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Greedy [i, j) ranges of units whose counts fit `max_tokens`, each range starting with
    the last `overlap` units of the previous one unless that would add no new unit."""
    n = len(counts)
    i, prev_end = 0, 0
    while i < n:
        j, total = i, 0
        while j < n and total + counts[j] <= max_tokens:
            total += counts[j]
            j += 1
        if j <= prev_end:  # the overlap alone fills the budget: start fresh after it
            i = prev_end
            continue
        j = max(j, i + 1)
        yield i, j
        if j >= n:
            return
        prev_end = j
        i = max(j - overlap, i + 1)


def pack_balanced(counts: Sequence[int], max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """`pack` with the smallest budget that needs no more passages than `max_tokens` does,
    so that a segment's passages come out of even size instead of ending in a scrap."""
    best = list(pack(counts, max_tokens, overlap))
    lo, hi = max(counts, default=1), max_tokens
    while lo < hi:
        mid = (lo + hi) // 2
        trial = list(pack(counts, mid, overlap))
        if len(trial) <= len(best):
            best, hi = trial, mid
        else:
            lo = mid + 1
    return best


def fit_context(context: str, count: TokenCounter, max_tokens: int) -> str:
    """The context line, shortened word by word until it fits `max_tokens`."""
    if not context or max_tokens == 0:
        return ""
    if count([context])[0] <= max_tokens:
        return context
    words = context.split()
    lo, hi = 0, len(words)
    while lo < hi:  # the longest prefix of words that fits, ellipsis included
        mid = (lo + hi + 1) // 2
        if count([" ".join(words[:mid]) + "…"])[0] <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return shorten(" ".join(words[:lo]) + "…", len(context)) if lo else ""


def _pack_units(doc: Document, raw: list[Span], raw_counts: Sequence[int], context: str, count: TokenCounter,
                config: ChunkingConfig) -> list[Chunk]:
    """Passages of one segment from its sentence units and their word-piece counts (a unit
    over the budget is cut first)."""
    text = doc.text
    units: list[Span] = []
    counts: list[int] = []
    for span, n in zip(raw, raw_counts):
        if n <= config.max_tokens:
            units.append(span)
            counts.append(n)
        else:
            pieces = split_long_unit(text, span, count, config.max_tokens)
            units.extend(pieces)
            counts.extend(count_batched(count, [text[a:b] for a, b in pieces]))
    chunks = []
    for i, j in pack_balanced(counts, config.max_tokens, config.overlap_sentences):
        start, end = units[i][0], units[j - 1][1]
        chunks.append(
            Chunk(
                source=doc.id,
                start=start,
                end=end,
                text=text[start:end],
                context=context,
                sentences=tuple(units[i:j]),
            )
        )
    return chunks


def chunk_document(doc: Document, count: TokenCounter, config: ChunkingConfig) -> list[Chunk]:
    """All passages of a document, in reading order."""
    return chunk_documents([doc], count, config)[0]


def chunk_documents(docs: Sequence[Document], count: TokenCounter, config: ChunkingConfig) -> list[list[Chunk]]:
    """The passages of each document, as `chunk_document` cuts them. The sentence units of all
    the documents are counted together, COUNT_BATCH per call: a tokenizer call spreads a big
    batch over every core, and a call per segment ran on one (docs/speed.md, "Builds"). Each
    distinct context line is fitted once."""
    parts = [(i, doc, segment, sentence_units(doc.text, segment)) for i, doc in enumerate(docs) for segment in doc.segments]
    counts = count_batched(count, [doc.text[a:b] for _, doc, _, raw in parts for a, b in raw])
    contexts = {c: fit_context(c, count, config.max_context_tokens) for c in dict.fromkeys(s.context for _, _, s, _ in parts)}
    out: list[list[Chunk]] = [[] for _ in docs]
    at = 0
    for i, doc, segment, raw in parts:
        out[i].extend(_pack_units(doc, raw, counts[at : at + len(raw)], contexts[segment.context], count, config))
        at += len(raw)
    return out
