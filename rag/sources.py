"""Stage 1, seeds/ -> documents: find source files, decode them, and mark what is article text.

Page furniture (photo credits, captions, "Also read" lines, embedded tweets, navigation,
"Article information" blocks, link lists) is left out of every segment, so it can never be
cut into a passage. Nothing is deleted from the text: offsets keep pointing at the file as read.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import RagError
from .types import Document, Segment, SegmentKind

SOURCE_SUFFIXES = (".txt", ".md")
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


MAX_SOURCE_MB = 20.0  # one source file at most; RAG_MAX_SOURCE_MB raises it (README: "Sources")


def max_source_bytes() -> int:
    """The size cap of one source file, in bytes (RAG_MAX_SOURCE_MB, else MAX_SOURCE_MB)."""
    raw = os.environ.get("RAG_MAX_SOURCE_MB", "")
    try:
        mb = float(raw) if raw.strip() else MAX_SOURCE_MB
    except ValueError:
        raise RagError(f"RAG_MAX_SOURCE_MB must be a number of megabytes, got {raw!r}") from None
    if not mb > 0:
        raise RagError(f"RAG_MAX_SOURCE_MB must be above 0, got {raw!r}")
    return int(mb * 1_000_000)


def _shown(name: str) -> str:
    """A file name fit for a message, whatever bytes it holds."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def discover(root: Path, warn: Callable[[str], None] | None = None) -> list[Path]:
    """Every .txt and .md file under `root`, recursively, in a stable order.

    Hidden files and folders are skipped. Symbolic links are followed only while they stay
    inside `root`: a link that leaves the folder (or loops) is skipped with a warning naming
    it, so a link can never expose a file outside the sources to the app's readers. A name
    that is not valid UTF-8 is an error naming it (the index records names as UTF-8)."""
    if not root.exists():
        raise RagError(f"sources folder '{root}' does not exist; pass --sources DIR with your .txt/.md files")
    if not root.is_dir():
        raise RagError(f"sources path '{root}' is not a folder; pass --sources DIR")
    top = root.resolve()
    found: list[Path] = []
    seen_dirs = {top}

    def inside(path: Path) -> bool:
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling, or a loop of links
            return False
        return real == top or top in real.parents

    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        for name in list(dirs):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if name.startswith("."):
                dirs.remove(name)
            elif path.is_symlink() and (not inside(path) or path.resolve() in seen_dirs):
                dirs.remove(name)
                if warn:
                    warn(f"skipping {_shown(rel)}/: a link that leaves the sources folder or loops back into it")
            else:
                seen_dirs.add(path.resolve())
        for name in files:
            path = here / name
            if name.startswith(".") or path.suffix.lower() not in SOURCE_SUFFIXES:
                continue
            rel = path.relative_to(root).as_posix()
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise RagError(f"the file name '{_shown(rel)}' is not valid UTF-8; rename it (or move it out of the sources folder)") from None
            if path.is_symlink() and not inside(path):
                if warn:
                    warn(f"skipping {rel}: a link to a file outside the sources folder (links must stay inside it)")
                continue
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def decode(raw: bytes, name: str) -> str:
    """The file's text exactly as stored (no newline translation), or a one-line error."""
    if b"\x00" in raw:
        raise RagError(f"{name} holds NUL bytes, so it is not a text file; move it out of the sources folder")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RagError(
            f"{name} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 or move it out of the sources folder"
        ) from None


def read_source(root: Path, path: Path, limit: int | None = None) -> Document | None:
    """Read one source file; None when it holds no text (the caller warns)."""
    source_id = path.relative_to(root).as_posix()
    raw = read_bytes(source_id, path, max_source_bytes() if limit is None else limit)
    return parse_document(source_id, decode(raw, source_id), hashlib.sha256(raw).hexdigest())


def read_bytes(source_id: str, path: Path, limit: int) -> bytes:
    """A source file's bytes, or a one-line error naming it (too big, gone, unreadable)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise RagError(
                f"{source_id} is {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit for one source; split it, or set "
                "RAG_MAX_SOURCE_MB to raise the limit"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RagError(f"{source_id} disappeared while the sources were read; run again") from None
    except OSError as exc:
        raise RagError(f"cannot read {source_id}: {exc.strerror}; check its permissions") from None
    if len(raw) > limit:  # grew since it was measured
        raise RagError(f"{source_id} grew past the {limit / 1e6:g} MB limit while it was read; run again")
    return raw


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


def source_digests(root: Path, warn: Callable[[str], None] | None = None) -> dict[str, str]:
    """The sha256 of every source file's bytes, by id, as a manifest records them, read
    without decoding or parsing: enough to tell that an index is up to date at a fraction of
    `load_documents`' cost. Files that `load_documents` would skip (no article text) are listed
    too, so a folder holding one never matches a manifest here and is loaded in full."""
    limit = max_source_bytes()
    digests = {}
    for path in discover(root, warn):
        source_id = path.relative_to(root).as_posix()
        digests[source_id] = hashlib.sha256(read_bytes(source_id, path, limit)).hexdigest()
    return digests


def matching_digests(root: Path, matches: Callable[[Mapping[str, str]], bool],
                     warn: Callable[[str], None] | None = None) -> dict[str, str] | None:
    """The sources' digests (`source_digests`) when `matches` accepts them, else None (then
    the caller loads the documents, which says what is wrong with an unreadable file). The
    folder's warnings go to `warn` only on a match, so a caller that goes on to load never
    shows them twice."""
    held: list[str] = []
    try:
        digests = source_digests(root, held.append)
    except RagError:
        return None
    if not matches(digests):
        return None
    for message in held:
        if warn:
            warn(message)
    return digests


def digests_of(documents: Iterable[Document]) -> dict[str, str]:
    """The sha256 of each loaded document's bytes, by id (as `source_digests` gives them)."""
    return {d.id: d.sha256 for d in documents}


def load_documents(root: Path, warn: Callable[[str], None] | None = None) -> list[Document]:
    """Read every source under `root`; empty files are skipped with a warning. A file that
    cannot be indexed as it is (not UTF-8, binary, too big, unreadable) stops the build with a
    one-line error naming it, so the index is never rebuilt without it by accident."""
    documents = []
    limit = max_source_bytes()
    for path in discover(root, warn):
        doc = read_source(root, path, limit)
        if doc is None:
            if warn:
                warn(f"skipping {path.relative_to(root).as_posix()}: it holds no article text")
            continue
        documents.append(doc)
    if not documents:
        raise RagError(f"no .txt or .md files with text under '{root}'; add articles there")
    return documents
