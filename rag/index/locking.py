"""One writer per index: an flock'd lock file, fsync helpers and the build's checkpoints."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import RagError
from rag.index.layout import check_index_path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for sub in sorted(path.rglob("*")):
        _fsync_path(sub)
    _fsync_path(path)


def checkpoint(name: str) -> None:
    """A named point of a build where the crash tests stop it (RAG_PAUSE_AT=name makes the
    process announce the point on stderr and wait there to be killed)."""
    if os.environ.get("RAG_PAUSE_AT") == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        time.sleep(3600)


_HELD: dict[Path, int] = {}  # index folders this process holds the lock of, and how deeply


def _locked_by(root: Path) -> str:
    try:
        return (root / ".lock").read_text("utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def index_lock(root: Path) -> Iterator[None]:
    """Hold the index folder for writing; a second writer is refused, never interleaved.
    Re-entrant within a process (a command holds it while it loads the model and builds). The
    lock dies with its process, so a killed build never leaves the folder locked."""
    import fcntl

    check_index_path(root)
    key = root.resolve()
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RagError(
                f"another process is writing the index in '{root}' ({_locked_by(root)}); wait for it to finish, then run again"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_locked(root: Path) -> bool:
    """Whether another process holds the index folder's lock (a build is running)."""
    try:
        with index_lock(root):
            return False
    except RagError:
        return True
