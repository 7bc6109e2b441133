"""Stage 2, documents -> chunks: sentence-aware passages with overlap, sized in word-pieces.

Everything here is a pure function of text and offsets. Sentences come from blingfire, but
its output is used only as a set of cut points inside each line, so the units always cover
the line's text exactly and a bug or surprise in the segmenter can never break an offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from .sources import iter_lines, shorten
from .types import Chunk, ChunkingConfig, Document, Segment

TokenCounter = Callable[[Sequence[str]], list[int]]
Span = tuple[int, int]

_WORD = re.compile(r"\S+")


def _sentence_ends(line: str) -> list[int]:
    """Offsets inside `line` where blingfire says a sentence ends."""
    import blingfire  # a compiled module; imported here so that `rag ask` never pays for it

    if not line.strip():
        return []
    _, offsets = blingfire.text_to_sentences_and_offsets(line)
    return sorted({min(max(int(end), 0), len(line)) for _, end in offsets})


def _strip_span(text: str, start: int, end: int) -> Span | None:
    """The span without its surrounding whitespace, or None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def sentence_units(text: str, segment: Segment) -> list[Span]:
    """Sentence spans of a segment, in order; each line of a list segment is one unit."""
    units: list[Span] = []
    body = text[segment.start : segment.end]
    for line_start, line_end in iter_lines(body):
        if line_start == line_end:
            continue
        a, b = segment.start + line_start, segment.start + line_end
        cuts = [a] if segment.kind == "list" else [a] + [a + e for e in _sentence_ends(text[a:b])]
        cuts.append(b)
        for lo, hi in zip(cuts, cuts[1:]):
            span = _strip_span(text, lo, hi)
            if span:
                units.append(span)
    return units


def split_long_unit(text: str, span: Span, count: TokenCounter, max_tokens: int) -> list[Span]:
    """Cut a unit that alone exceeds `max_tokens` at word boundaries (at characters if a
    single word is that long), keeping every piece within the budget."""
    words = [(span[0] + m.start(), span[0] + m.end()) for m in _WORD.finditer(text[span[0] : span[1]])]
    pieces: list[Span] = []
    for (ws, we), n in zip(words, count_batched(count, [text[ws:we] for ws, we in words])):
        pieces.extend([(ws, we)] if n <= max_tokens else _halve(text, (ws, we), count, max_tokens))
    counts = count_batched(count, [text[a:b] for a, b in pieces])
    out: list[Span] = []
    cur_start, cur_end, total = pieces[0][0], pieces[0][1], counts[0]
    for (a, b), n in zip(pieces[1:], counts[1:]):
        if total + n <= max_tokens:
            cur_end, total = b, total + n
        else:
            out.append((cur_start, cur_end))
            cur_start, cur_end, total = a, b, n
    out.append((cur_start, cur_end))
    return out


def _halve(text: str, span: Span, count: TokenCounter, max_tokens: int) -> list[Span]:
    """Split a span at character midpoints until every piece fits `max_tokens`."""
    a, b = span
    if b - a <= 1 or count([text[a:b]])[0] <= max_tokens:
        return [span]
    mid = (a + b) // 2
    return _halve(text, (a, mid), count, max_tokens) + _halve(text, (mid, b), count, max_tokens)


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


COUNT_BATCH = 2048  # units counted per tokenizer call: a huge segment never tokenizes at once


def count_batched(count: TokenCounter, texts: Sequence[str]) -> list[int]:
    """`count(texts)`, COUNT_BATCH texts at a time."""
    return [n for lo in range(0, len(texts), COUNT_BATCH) for n in count(texts[lo : lo + COUNT_BATCH])]


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
