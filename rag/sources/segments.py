"""Stage 1, text -> segments: mark what in a decoded file is article text.

Page furniture (photo credits, captions, "Also read" lines, embedded tweets, navigation,
"Article information" blocks, link lists) is left out of every segment, so it can never be
cut into a passage. Nothing is deleted from the text: offsets keep pointing at the file as read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from rag.types import Document, Segment, SegmentKind

TITLE_MAX_CHARS = 90

LineKind = Literal["blank", "title", "heading", "prose", "list", "furniture"]

_TITLE = re.compile(r"^=\s*([^=].*?)\s*=$|^#\s+(.+?)\s*#*$")
_HEADING = re.compile(r"^(={2,6})\s*(.+?)\s*\1$|^#{2,6}\s+(.+?)\s*#*$")
_LIST_ITEM = re.compile(r"^(?:[-*•▪◦]|\d{1,3}[.)])\s+\S")
_FURNITURE = [
    re.compile(r"^(?:photo|image|picture|video)\s+(?:credit|caption|source)s?\s*[,:]", re.I),
    re.compile(r"^(?:also read|read also|read more|related(?: articles?| stories)?)\b.{0,60}$", re.I),
    re.compile(r"^(?:PREV|NEXT|PREVIOUS)\b"),
    re.compile(r"pic\.twitter\.com/|https?://(?:t\.co|twitter\.com|x\.com)/", re.I),
    re.compile(r"^[—–-]\s*.+\(@\w+\)\s+\w+\s+\d{1,2},\s+\d{4}$"),  # tweet attribution
    re.compile(r"^short link\b", re.I),
    re.compile(r"^(?:share this|follow us|sign up|subscribe)\b.{0,60}$", re.I),
    re.compile(r"^[-–—•*_=~.·|]+$"),  # lone dashes and rules
    re.compile(r"\.\s+(?:AFP|Reuters|AP|EPA|Getty Images|AFP/Getty Images|Anadolu)\s*$"),  # caption
]
_CREDIT = re.compile(r"^(?:photo|image|picture|video)\s+credit", re.I)
_ARTICLE_INFO = re.compile(r"^article information$", re.I)
_INFO_BULLET = re.compile(r"^[•·▪-]\s")
_INFOBOX = re.compile(r"^infobox$", re.I)
_LINK_SECTIONS = {
    "see also",
    "references",
    "external links",
    "further reading",
    "notes",
    "sources",
    "bibliography",
    "citations",
}
_SUBHEAD_MAX_WORDS = 12
_ALT_TEXT_MAX_WORDS = 35
_INNER_SENTENCE_END = re.compile(r"[.!?][\"”’')]?\s+[A-Z“\"]")
_HEADLINE_MAX_WORDS = 24


@dataclass(frozen=True)
class Line:
    """A line's content span (surrounding whitespace excluded) and what it is."""

    start: int
    end: int
    kind: LineKind
    heading: str = ""  # for title/heading lines: the heading's text


def parse_document(source_id: str, text: str, sha256: str, title: str = "") -> Document | None:
    """Build a Document from text; `title` overrides the one found in the text."""
    lines = classify_lines(text)
    segments = tuple(build_segments(text, lines, title))
    if not segments:
        return None
    return Document(
        id=source_id,
        text=text,
        title=title or find_title(text, lines, segments),
        sha256=sha256,
        segments=segments,
    )


def plain_document(source_id: str, text: str, title: str = "") -> Document | None:
    """A document that is all article text (a benchmark passage): no furniture detection,
    its title as the context of every passage."""
    stripped = text.strip()
    if not stripped:
        return None
    start = text.index(stripped[0])
    segment = Segment(start, start + len(stripped), "prose", title.strip())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(source_id, text, title.strip() or shorten(stripped, TITLE_MAX_CHARS), digest, (segment,))


_BLANK = " \t\n\r\x0b\x0c\ufeff\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def iter_lines(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line's stripped content, for \\n, \\r\\n and \\r line ends."""
    for match in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n|$)", text):
        if match.start() == match.end() == len(text) and text:
            break
        line = match.group()
        body = line.rstrip("\r\n")
        stripped_left = len(body) - len(body.lstrip(_BLANK))  # a byte-order mark counts as blank
        content = body.strip(_BLANK)
        start = match.start() + stripped_left
        yield start, start + len(content)


def _is_subhead(content: str) -> bool:
    words = content.split()
    return (
        0 < len(words) <= _SUBHEAD_MAX_WORDS
        and content[0].isupper()
        and content[-1] not in ".!:;,\"”'’)»"
    )


def classify_lines(text: str) -> list[Line]:
    """Tell each line apart: title, section heading, prose, list item, furniture or blank."""
    raw = list(iter_lines(text))
    kinds: list[Line] = []
    in_article_info = False
    in_link_section = False
    for start, end in raw:
        content = text[start:end]
        if not content:
            kinds.append(Line(start, end, "blank"))
            continue
        if in_article_info:
            if _INFO_BULLET.match(content):
                kinds.append(Line(start, end, "furniture"))
                continue
            in_article_info = False
        heading = _HEADING.match(content)
        title = _TITLE.match(content)
        if heading:
            name = next(g for g in heading.groups()[1:] if g)
            in_link_section = name.strip().lower() in _LINK_SECTIONS
            kinds.append(Line(start, end, "heading", name.strip()))
        elif title and not any(k.kind == "title" for k in kinds):
            kinds.append(Line(start, end, "title", next(g for g in title.groups() if g).strip()))
        elif _INFOBOX.match(content):
            in_link_section = False
            kinds.append(Line(start, end, "heading", "Infobox"))
        elif in_link_section:
            kinds.append(Line(start, end, "furniture"))
        elif _ARTICLE_INFO.match(content):
            in_article_info = True
            kinds.append(Line(start, end, "furniture"))
        elif any(p.search(content) for p in _FURNITURE):
            kinds.append(Line(start, end, "furniture"))
        elif _LIST_ITEM.match(content):
            kinds.append(Line(start, end, "list"))
        else:
            kinds.append(Line(start, end, "prose"))
    _mark_alt_texts(text, kinds)
    _mark_subheads(text, kinds)
    return kinds


def _is_alt_text(content: str) -> bool:
    """One short sentence at most: what an image description looks like."""
    return len(content.split()) <= _ALT_TEXT_MAX_WORDS and not _INNER_SENTENCE_END.search(content)


def _mark_alt_texts(text: str, lines: list[Line]) -> None:
    """A one-sentence line just above a photo credit is the image's alt text, not article text."""
    previous: int | None = None
    for i, line in enumerate(lines):
        if line.kind == "blank":
            continue
        if _CREDIT.match(text[line.start : line.end]) and previous is not None:
            before = lines[previous]
            if before.kind == "prose" and _is_alt_text(text[before.start : before.end]):
                lines[previous] = Line(before.start, before.end, "furniture")
        previous = i


def _mark_subheads(text: str, lines: list[Line]) -> None:
    """Short unpunctuated lines followed by article text are subheads: news section headings.

    The first content line, if it looks like a headline, becomes the title.
    """
    content_idx = [i for i, line in enumerate(lines) if line.kind not in ("blank", "furniture")]
    has_title = any(line.kind == "title" for line in lines)
    for n, i in enumerate(content_idx):
        line = lines[i]
        if line.kind != "prose":
            continue
        content = text[line.start : line.end]
        following = [lines[j].kind for j in content_idx[n + 1 :]]
        if not any(k in ("prose", "list") for k in following[:1]):
            continue
        words = content.split()
        if n == 0 and not has_title and len(words) <= _HEADLINE_MAX_WORDS:
            if content[-1] not in ".!;,":
                lines[i] = Line(line.start, line.end, "title", content)
                has_title = True
                continue
        if _is_subhead(content):
            lines[i] = Line(line.start, line.end, "heading", content)


def build_segments(text: str, lines: list[Line], title: str = "") -> Iterator[Segment]:
    """Group consecutive article lines of one kind and section into segments."""
    doc_title = title or next((line.heading for line in lines if line.kind == "title"), "")
    heading = ""
    current: tuple[int, int, SegmentKind, str] | None = None
    for line in lines:
        if line.kind == "blank":
            continue
        if line.kind in ("prose", "list"):
            kind: SegmentKind = line.kind
            if heading == "Infobox" and kind == "prose":
                heading = ""  # an infobox is a list; the prose after it is the article's lead
            context = " — ".join(part for part in (doc_title, heading) if part)
            if current and current[2] == kind and current[3] == context:
                current = (current[0], line.end, kind, context)
            else:
                if current:
                    yield Segment(*current)
                current = (line.start, line.end, kind, context)
            continue
        if current:
            yield Segment(*current)
            current = None
        if line.kind == "heading":
            heading = line.heading
    if current:
        yield Segment(*current)


def find_title(text: str, lines: list[Line], segments: tuple[Segment, ...]) -> str:
    """The article's own title, else its first sentence shortened at a word boundary."""
    for line in lines:
        if line.kind == "title":
            return line.heading
    first = text[segments[0].start : segments[0].end].split("\n", 1)[0].strip()
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    return shorten(sentence, TITLE_MAX_CHARS)


def shorten(text: str, limit: int) -> str:
    """`text` cut at the last word boundary that fits `limit` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:—–-")
    return cut + "…"
