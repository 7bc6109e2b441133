"""Whether cited sources still say what was indexed: a hash check at the edges (CLI and app).

Citations always point at the text as indexed (each generation keeps it), so they stay exact;
but when a source file has been edited since, a reader should know that the file on disk now
differs, and how to refresh. Hashes are cached by (size, modification time), so a question
costs a stat per cited file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from rag.answer.types import Answer
from rag.types import Manifest


class SourceWatch:
    """Tells which of an index's sources changed on disk since it was built."""

    def __init__(self, manifest: Manifest) -> None:
        folder = manifest.extra.get("sources_dir")
        self._root = Path(folder) if isinstance(folder, str) and manifest.extra.get("from_files", True) else None
        self._indexed = {name: record.sha256 for name, record in manifest.sources.items()}
        self._cache: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def changed(self, names: Iterable[str]) -> list[str]:
        """The given sources whose file is gone or no longer has the indexed content, sorted."""
        if self._root is None:
            return []
        return sorted({name for name in names if name in self._indexed and self._digest(name) != self._indexed[name]})

    def _digest(self, name: str) -> str | None:
        path = self._root / name if self._root is not None else None
        try:
            assert path is not None
            stat = path.stat()
        except (OSError, AssertionError):
            return None
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None
        with self._lock:
            self._cache[name] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest


def refresh_hint(changed: list[str], options: str) -> str:
    """One line saying which cited sources changed and how to refresh; `options` name the
    index as typed (`--index DIR`, or `--store ... --collection ...`)."""
    names = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (f"{names} changed since the index was built; the citations quote the indexed text. "
            f"Refresh with: rag index {options}")


def with_changes(answer: Answer, watch: SourceWatch) -> Answer:
    """The answer with the cited sources (hits and statements) that changed on disk listed."""
    cited = {h.source for h in answer.hits} | {s.source for s in answer.by_source}
    return replace(answer, changed_sources=tuple(watch.changed(cited)))
