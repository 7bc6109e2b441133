"""Stage 2a, segments -> sentence units: cut points inside each line, sized in word-pieces.

Sentences come from blingfire, but its output is used only as a set of cut points inside each
line, so the units always cover the line's text exactly and a bug or surprise in the segmenter
can never break an offset. A unit longer than the budget is split at word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.sources import iter_lines
from rag.types import Segment

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

COUNT_BATCH = 2048  # units counted per tokenizer call: a huge segment never tokenizes at once


def count_batched(count: TokenCounter, texts: Sequence[str]) -> list[int]:
    """`count(texts)`, COUNT_BATCH texts at a time."""
    return [n for lo in range(0, len(texts), COUNT_BATCH) for n in count(texts[lo : lo + COUNT_BATCH])]
