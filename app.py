"""Serve the grounded question-answering app on the seeds (or any sources folder).

    python app.py [--sources DIR] [--index DIR | --store milvus:PATH.db|milvus://HOST:PORT [--collection NAME]]
                  [--host H] [--port P]

The index is built first when it is missing or out of date with the sources. Host and port
default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from threading import Thread  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the grounded question-answering app.")
    parser.add_argument("--sources", type=Path, default=Path("seeds"), help="folder of .txt/.md articles (default: seeds)")
    parser.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    parser.add_argument("--store", default=None, help="a Milvus store instead of the --index folder: milvus://HOST:PORT or milvus:PATH.db")
    parser.add_argument("--collection", default="rag", help="with --store: the collection (default: rag)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1")
    parser.add_argument("--port", type=_port, default=os.environ.get("GRADIO_SERVER_PORT") or "7860",
                        help="port (default: GRADIO_SERVER_PORT, else 7860)")
    return parser.parse_args(argv)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port must be a whole number, got {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"the port must be from 1 to 65535, got {port}")
    return port


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from rag.encoding import MicroBatchEncoder, question_encoder
    from rag.errors import RagError
    from rag.index import inspect_index
    from rag.locations import current_label, location, open_searcher
    from rag.web import (
        AppState,
        build_app,
        build_ui,
        current_name,
        ensure_at,
        ensure_index,
        import_in_background,
        open_backend,
        open_backend_at,
        serve,
    )

    @functools.cache
    def import_gradio() -> Thread:
        """Gradio's import, started once, on a thread beside any build and the opening of the
        index and the encoder; started when the sources are checked, since that check is many
        small reads on a large folder, and beside an import holding the interpreter each read
        waits its turn (docs/speed.md, "Queries and cold start")."""
        return import_in_background("gradio")

    try:
        where = location(args.index, args.store, args.collection)
        if where.milvus is not None:
            ensure_at(args.sources, where, log, import_gradio)
            searcher = open_searcher(where)
            encoder = MicroBatchEncoder(searcher.encoder)
            app_state = AppState(lambda: open_backend_at(where, encoder), lambda: current_label(where), log=log)
        else:
            loaded = ensure_index(args.sources, args.index, log, checked=import_gradio)
            state = inspect_index(args.index)
            if state.manifest is None or state.generation is None:
                raise RagError(state.message)
            encoder = MicroBatchEncoder(question_encoder(state.generation, state.manifest.model, loaded))
            app_state = AppState(lambda: open_backend(args.index, encoder), lambda: current_name(args.index), log=log)
        import_gradio().join()
        app = build_app(app_state, build_ui(app_state))
    except RagError as exc:
        log(f"error: {exc}")
        return 1
    except OSError as exc:
        log(f"error: {exc.strerror or exc}{f' ({exc.filename})' if exc.filename else ''}; check the paths and their permissions")
        return 1
    try:
        serve(app, args.host, args.port, lambda: log(f"ready in {time.perf_counter() - STARTED:.1f} s: http://{args.host}:{args.port}"))
    except OSError as exc:
        log(f"error: cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); pass --port with a free port")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
