"""Where a Milvus store lives (`milvus:path.db` or a server URI) and one client per place."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from rag.errors import RagError

SENTENCE_SLOTS = 1024  # sentence ids are passage id * SENTENCE_SLOTS + position
BLOB_PART = 60_000  # characters per meta row (Milvus caps a VARCHAR at 65,535 bytes)
TEXT_MAX = 65_535
FETCH = 2_000  # ids per query expression
INSERT_BATCH = 500


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus index lives: a server URI (http://host:port) or a Milvus Lite file."""

    uri: str
    collection: str = "rag"

    @property
    def lite(self) -> bool:
        return not self.uri.startswith(("http://", "https://", "tcp://", "unix:"))

    def describe(self) -> str:
        return f"Milvus collection '{self.collection}' at {self.uri}"

    @property
    def spec(self) -> str:
        """The --store value that names this target."""
        return f"milvus:{self.uri}" if self.lite else "milvus://" + self.uri.split("://", 1)[1]


def parse_store(spec: str, collection: str = "rag") -> MilvusTarget:
    """`milvus://HOST:PORT` (a server) or `milvus:PATH.db` (Milvus Lite) as a target; a
    one-line error for anything else."""
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", collection or ""):
        raise RagError(f"--collection must be letters, digits and underscores, starting with a letter, got {collection!r}")
    if "__" in collection:
        raise RagError(f"--collection may not hold '__' (the store names its own collections <name>__...), got {collection!r}")
    if spec.startswith("milvus://"):
        host = spec[len("milvus://"):].rstrip("/")
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d+", host):
            raise RagError(f"--store {spec!r}: a Milvus server is milvus://HOST:PORT, e.g. milvus://localhost:19530")
        return MilvusTarget(f"http://{host}", collection)
    if spec.startswith("milvus:"):
        path = spec[len("milvus:"):]
        if not path.endswith(".db") or path.endswith("/.db"):
            raise RagError(f"--store {spec!r}: a Milvus Lite store is milvus:PATH.db, e.g. milvus:archive.db")
        return MilvusTarget(os.path.abspath(path), collection)
    raise RagError(f"--store {spec!r} is not a store; use milvus://HOST:PORT or milvus:PATH.db (or leave it out for the --index folder)")


_CLIENTS: dict[str, Any] = {}


def client_for(target: MilvusTarget) -> Any:
    """One client per URI per process (Milvus Lite runs one engine per file)."""
    if target.uri not in _CLIENTS:
        import logging
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # milvus-lite imports pkg_resources
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise RagError("the Milvus store needs pymilvus (and milvus-lite for milvus:PATH.db); "
                               "run: bash scripts/setup.sh") from None
            # Its iterators warn about Milvus Lite's clocks, and it logs every failed call that it then
            # raises (a family dropped under a reader among them): we report what it raises.
            for name in ("pymilvus", "pymilvus.orm.iterator"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            if target.lite:
                folder = os.path.dirname(target.uri)
                if not os.path.isdir(folder):
                    raise RagError(f"--store milvus:{target.uri}: the folder {folder} does not exist; create it first")
            try:
                _CLIENTS[target.uri] = MilvusClient(uri=target.uri)
            except Exception as exc:  # noqa: BLE001 (pymilvus raises its own types)
                if target.lite:
                    raise RagError(f"cannot open the Milvus Lite file {target.uri}: another process has it open (Milvus "
                                   "Lite serves one process per file: stop that process, or run a Milvus server and use "
                                   "--store milvus://HOST:PORT), or Milvus Lite could not start (HOME must be set)") from None
                detail = " ".join(str(exc).split())[:160]
                raise RagError(f"cannot reach Milvus at {target.uri} ({detail}); start it, or check --store") from None
    return _CLIENTS[target.uri]


def release(target: MilvusTarget) -> None:
    """Close this process's client of `target` (a Milvus Lite file is then free for others)."""
    client = _CLIENTS.pop(target.uri, None)
    if client is not None:
        client.close()
        if target.lite:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(target.uri)


def _ids_filter(field: str, ids: Sequence[int]) -> str:
    return f"{field} in [{','.join(str(int(i)) for i in ids)}]"


def _quoted(values: Collection[str]) -> str:
    return "[" + ",".join(json.dumps(v) for v in sorted(values)) + "]"
