"""Stage 7, the command line: the parser and `main`, standard library only.

The handlers are in rag.commands and are imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rag.checks import ABSTAIN_MODES
from rag.commands import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_USAGE,
    cmd_ask,
    cmd_bench,
    cmd_eval,
    cmd_index,
)
from rag.errors import RagError

DEFAULT_SOURCES = Path("seeds")
DEFAULT_INDEX = Path("index")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see: {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _positive_int(name: str, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {value!r}") from None
        if not 1 <= number <= high:
            raise argparse.ArgumentTypeError(f"{name} must be from 1 to {high}, got {number}")
        return number

    return parse


def _unit_float(name: str) -> Any:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number from 0 to 1, got {value!r}") from None
        if not 0.0 <= number <= 1.0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{name} must be a number from 0 to 1, got {value}")
        return number

    return parse


STORE_HELP = "a Milvus store instead of the --index folder: milvus://HOST:PORT (a server) or milvus:PATH.db (Milvus Lite)"
COLLECTION_HELP = "with --store: the collection (default: rag)"


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help=STORE_HELP)
    parser.add_argument("--collection", default="rag", help=COLLECTION_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rag", description="Grounded question answering over a folder of articles.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    index = sub.add_parser("index", help="build the index from the sources folder")
    index.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="folder of .txt/.md files (default: seeds)")
    index.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder (default: index)")
    index.add_argument("--model", default=None, help="sentence-transformers name or folder (default: bundled all-MiniLM-L6-v2)")
    index.add_argument("--max-tokens", type=_positive_int("--max-tokens", 4096), default=None, help="word-pieces per passage (default: the index's, else 96)")
    index.add_argument("--overlap", type=int, choices=range(9), metavar="N", default=None, help="sentences shared by neighbouring passages (default: the index's, else 1)")
    index.add_argument("--full", action="store_true", help="rebuild everything instead of updating what changed")
    index.add_argument("--precision", choices=("int8", "fp32"), default=None, help="the model copy's precision (default: the index's, else int8)")
    index.add_argument("--watch", action="store_true", help="keep running and update the index whenever the sources change")
    index.add_argument("--debounce", type=float, default=1.0, help="with --watch: seconds of quiet before updating (default: 1)")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    _store_options(index)

    ask = sub.add_parser("ask", help="answer a question with ranked, cited passages")
    ask.add_argument("question", nargs="?", help="the question (or use --questions)")
    ask.add_argument("--questions", type=Path, help="JSONL file of {\"id\", \"question\"} objects; needs --json")
    ask.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder (default: index)")
    ask.add_argument("-k", type=_positive_int("-k", 100), default=5, help="passages to return (default: 5)")
    ask.add_argument("--json", action="store_true", help="print JSON instead of text")
    ask.add_argument("--abstain", choices=ABSTAIN_MODES, default="lenient",
                     help="lenient: answer when in doubt (default); strict: say the sources do not answer when in doubt")
    ask.add_argument("--model", default=None, help="must be the model the index was built with (default: that model)")
    _store_options(ask)
    ev = sub.add_parser("eval", help="evaluate retrieval on a question set (JSONL) or a BEIR folder")
    ev.add_argument("questions", type=Path, help="JSONL question set, or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    ev.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index to evaluate a JSONL set against (default: index)")
    ev.add_argument("-k", type=_positive_int("-k", 100), default=10, help="depth of the evaluation (default: 10)")
    ev.add_argument("--modes", default="hybrid,dense,bm25", help="comma list of hybrid, dense, bm25 (default: all)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--report", type=Path, help="also write a .md or .html report, with a hit@k plot beside it")
    ev.add_argument("--fusion", choices=("convex", "rrf"), default="convex", help="how hybrid mode fuses (default: convex)")
    ev.add_argument("--alpha", type=_unit_float("--alpha"), default=None, help="hybrid: weight of the embedding side against BM25 (default: 0.6)")
    ev.add_argument("--sentence-weight", type=_unit_float("--sentence-weight"), default=None, help="hybrid: share of the best sentence cosine in the embedding side (default: 0.75)")
    ev.add_argument("--coverage-weight", type=_unit_float("--coverage-weight"), default=None, help="hybrid: weight of the best sentence's question-word coverage (default: 0.4)")
    ev.add_argument("--calibrate", action="store_true", help="fit the abstention model on this set (answerable and unanswerable questions) and store it with the index")
    ev.add_argument("--answer-rate", type=_unit_float("--answer-rate"), default=None, help="with --calibrate: the threshold answers this share of answerable questions (default: fewest errors on both sides)")
    ev.add_argument("--threshold", type=_unit_float("--threshold"), default=None, help="judge abstention at this support threshold instead of the index's")
    ev.add_argument("--cache", type=Path, default=Path(".cache") / "eval", help="where BEIR corpora are indexed (default: .cache/eval)")
    ev.add_argument("--model", default=None, help="model for a BEIR corpus (default: bundled all-MiniLM-L6-v2)")
    ev.add_argument("--precision", choices=("int8", "fp32"), default=None, help="the model copy's precision for a BEIR corpus (default: int8)")
    _store_options(ev)
    bench = sub.add_parser("bench", help="measure every stage against its floor, and search at scale")
    bench.add_argument("--squad", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "squad-v1.1-dev",
                       help="SQuAD-dev BEIR folder (default: ../shared/datasets/squad-v1.1-dev; skipped if absent)")
    bench.add_argument("--squad2", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "squad-v2.0-dev-half",
                       help="SQuAD 2.0 half folder, for the neighbour figures (skipped when missing)")
    bench.add_argument("--sizes", default="100000,1000000", help="comma list of synthetic corpus sizes (default: 100000,1000000)")
    bench.add_argument("--rounds", type=int, default=2, help="alternated int8/fp32 build rounds on SQuAD (default: 2)")
    bench.add_argument("--large", type=int, default=0, metavar="N",
                       help="also time rag index on a real-text corpus of about N passages (SQuAD sentences redrawn; needs --squad)")
    bench.add_argument("--no-stores", action="store_true", help="skip the folder-vs-Milvus Lite comparison")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "index":
            return cmd_index(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "bench":
            return cmd_bench(args)
        return cmd_ask(args)
    except RagError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except MemoryError:
        sys.stderr.write("error: out of memory; index fewer or smaller sources at a time\n")
        return EXIT_ERROR
    except OSError as exc:  # the disk, the network, permissions: one line, never a traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"error: {exc.strerror or exc}{where}; check the path, its permissions and free disk space\n")
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001  (a bug: one line, the traceback only on request)
        if os.environ.get("RAG_DEBUG"):
            raise
        sys.stderr.write(f"error: unexpected {type(exc).__name__}: {' '.join(str(exc).split())[:200]} "
                         "(a bug; run again with RAG_DEBUG=1 for the traceback and report it)\n")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
