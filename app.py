"""Serve the grounded question-answering app on the seeds (or any sources folder).

    python app.py [--sources DIR] [--index DIR] [--host H] [--port P] [--share]

The index is built first when it is missing or out of date with the sources. Host and port
default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, else 127.0.0.1:7860.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the grounded question-answering app.")
    parser.add_argument("--sources", type=Path, default=Path("seeds"), help="folder of .txt/.md articles (default: seeds)")
    parser.add_argument("--index", type=Path, default=Path("index"), help="index folder (default: index)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860))
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from rag.batching import MicroBatchEncoder
    from rag.errors import RagError
    from rag.serve import current_name, ensure_index, open_backend, question_encoder
    from rag.store import current_generation, read_manifest
    from rag.webui import CSS, HEAD, AppState, build_ui

    try:
        loaded = ensure_index(args.sources, args.index, log)
        generation, model = current_generation(args.index), read_manifest(args.index).model
        assert generation is not None  # ensure_index has built one
        encoder = MicroBatchEncoder(question_encoder(generation, model, loaded))
        state = AppState(lambda: open_backend(args.index, encoder), lambda: current_name(args.index), log=log)
    except RagError as exc:
        log(f"error: {exc}")
        return 1
    demo = build_ui(state)
    demo.queue(default_concurrency_limit=8)
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            quiet=True,
            css=CSS,
            head=HEAD,
        )
    except OSError as exc:
        log(f"error: cannot serve on {args.host}:{args.port} ({exc}); pass --port with a free port")
        return 1
    log(f"ready in {time.perf_counter() - STARTED:.1f} s: http://{args.host}:{args.port}")
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
