"""Stage 1, seeds/ -> documents: find source files, read their bytes, and hash them.

Files are found and decoded here (size limit, UTF-8, links that leave the folder); what is
article text inside a file is decided by rag.sources.segments. The digests are the sha256 of
the bytes, which is what the manifest records, so an up-to-date check needs no parse.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from rag.errors import RagError
from rag.sources.segments import parse_document
from rag.types import Document

SOURCE_SUFFIXES = (".txt", ".md")

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
