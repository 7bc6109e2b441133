"""Stage 7, the command line: `rag index` and `rag ask`.

Only the standard library is imported at module level; each handler imports the pipeline it
needs, so `rag --help` and argument errors answer at once. Every failure the user can fix is a
RagError, printed as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .errors import RagError

DEFAULT_SOURCES = Path("seeds")
DEFAULT_INDEX = Path("index")
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


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


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def cmd_index(args: argparse.Namespace) -> int:
    from .build import build_encoder, existing_settings, up_to_date
    from .embedding import resolve_model
    from .sources import digests_of, load_documents
    from .store import index_lock, inspect_index
    from .types import ChunkingConfig

    from .locations import location

    started = time.perf_counter()
    where = location(args.index, args.store, args.collection)  # a bad --store fails first
    documents = load_documents(args.sources, _warn)  # fail on bad sources before loading the model
    if where.milvus is not None:
        return _index_milvus(args, where, documents, started)
    with index_lock(args.index):  # held for the whole command: a second writer is refused at once
        state = inspect_index(args.index)
        if state.problem in ("newer", "damaged") and not args.full:
            raise RagError(state.message)
        kept_model, defaults = existing_settings(state)  # an index keeps its model and chunking
        model = args.model or kept_model
        try:
            config = ChunkingConfig(
                max_tokens=args.max_tokens or defaults.max_tokens,
                overlap_sentences=defaults.overlap_sentences if args.overlap is None else args.overlap,
                max_context_tokens=defaults.max_context_tokens,
            )
        except ValueError as exc:
            raise RagError(str(exc)) from None
        if not args.full and not args.watch:
            current = up_to_date(args.index, resolve_model(model)[0], config, digests_of(documents))
            if current is not None:
                _print_up_to_date(len(documents), current.passages, time.perf_counter() - started, args.index)
                return 0
        encoder = build_encoder(state, model, args.precision)
        _index_once(args, encoder, config, started, documents)
        if args.watch:
            _watch(args, encoder, config)
    return 0


def _index_milvus(args: argparse.Namespace, where: Any, documents: Any, started: float) -> int:
    """`rag index --store ...`: the same build into a Milvus collection."""
    from .locations import build_at, encoder_for_build, settings_at
    from .types import ChunkingConfig

    if args.watch:
        raise RagError("--watch works with the --index folder; for a Milvus store run rag index --store ... after changes")
    kept_model, defaults, _ = settings_at(where)
    try:
        config = ChunkingConfig(max_tokens=args.max_tokens or defaults.max_tokens,
                                overlap_sentences=defaults.overlap_sentences if args.overlap is None else args.overlap,
                                max_context_tokens=defaults.max_context_tokens)
    except ValueError as exc:
        raise RagError(str(exc)) from None
    encoder = encoder_for_build(where, args.model or kept_model, args.precision)
    report = build_at(where, args.sources, encoder, documents, config, full=args.full, progress=not args.quiet,
                      log=_log, precision=args.precision)
    _print_report(report, time.perf_counter() - started, str(where))
    return 0


def _print_up_to_date(sources: int, passages: int, seconds: float, index: Path | str) -> None:
    print(f"index is up to date: {sources} sources, {passages} passages; {seconds:.1f} s -> {index}", flush=True)


def _index_once(args: argparse.Namespace, encoder: Any, config: Any, started: float, documents: Any = None) -> None:
    """One build; `documents`, when given, are the sources already read."""
    from .build import build_index

    report = build_index(
        args.sources,
        args.index,
        encoder,
        config,
        progress=not args.quiet,
        warn=_warn,
        documents=documents,
        full=args.full,
        log=_log,
        precision=args.precision,
    )
    _print_report(report, time.perf_counter() - started, args.index)


def _print_report(report: Any, total: float, where: Path | str) -> None:
    if report.up_to_date:
        _print_up_to_date(report.documents, report.passages, total, where)
        return
    changes = (
        f"{report.added} added, {report.changed} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged; {report.embedded} passages embedded, {report.reused} reused"
    )
    print(
        f"indexed {report.documents} sources into {report.passages} passages "
        f"({report.sentences} sentences): {changes}; {total:.1f} s "
        f"(build {report.seconds:.1f} s, of which encoding {report.encode_seconds:.1f} s) -> {where}",
        flush=True,
    )


def _watch(args: argparse.Namespace, encoder: Any, config: Any) -> None:
    """Update the index whenever .txt/.md files under the sources change, after a quiet spell."""
    import threading

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    from .sources import SOURCE_SUFFIXES

    changed = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
            for raw in paths:
                path = Path(raw)
                if raw and not any(part.startswith(".") for part in path.parts[-1:]) and (
                    path.suffix.lower() in SOURCE_SUFFIXES or event.is_directory
                ):
                    changed.set()

    observer = Observer()
    observer.schedule(Handler(), str(args.sources), recursive=True)
    observer.start()
    _log(f"watching {args.sources} for changes (Ctrl-C to stop)")
    try:
        while True:
            changed.wait()
            while changed.is_set():  # debounce: wait until the sources have been quiet a while
                changed.clear()
                time.sleep(args.debounce)
            try:
                args.full = False
                _index_once(args, encoder, config, time.perf_counter())
            except RagError as exc:
                _log(f"error: {exc} (still watching)")
    finally:
        observer.stop()
        observer.join()


def cmd_ask(args: argparse.Namespace) -> int:
    from .checks import check_question

    if args.questions and args.question:
        raise RagError("give either a question or --questions FILE, not both")
    if args.questions and not args.json:
        raise RagError("--questions writes JSON lines; add --json")
    if not args.questions:
        if args.question is None:
            raise RagError('no question given; usage: rag ask "QUESTION" [--json]')
        check_question(args.question)  # fail before loading the model
        batch = None
    else:
        from .evaluation import read_question_records

        batch = [(r["id"], r["question"]) for r in read_question_records(args.questions)]
    from .api import OpenIndex
    from .freshness import refresh_hint
    from .locations import location

    index = OpenIndex(location(args.index, args.store, args.collection), args.model)
    if batch is None:
        answer = index.ask(args.question, args.k)
        if answer.changed_sources:
            hint = f"--index {args.index}" if args.store is None else f"--store {args.store} --collection {args.collection}"
            _warn(refresh_hint(list(answer.changed_sources), hint))
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False))
        else:
            print_answer(answer, sys.stdout)
        return 0
    answer_batch(index, batch, args.k, sys.stdout)
    return 0


def answer_batch(index: Any, batch: list[tuple[str, Any]], k: int, out: TextIO, chunk: int = 512) -> None:
    """One JSON line per input line; a bad question gets an "error" field, not a crash."""
    from .checks import check_question

    for lo in range(0, len(batch), chunk):
        part = batch[lo : lo + chunk]
        good: list[tuple[int, str]] = []
        errors: dict[int, str] = {}
        for i, (_, question) in enumerate(part):
            try:
                good.append((i, check_question(question)))
            except RagError as exc:
                errors[i] = str(exc)
        answers = dict(zip((i for i, _ in good), index.ask_many([q for _, q in good], k)))
        for i, (qid, question) in enumerate(part):
            if i in answers:
                record = {"id": qid, **answers[i].to_json()}
            else:
                record = {"id": qid, "question": question, "answered": False, "support": 0.0, "missing": [], "hits": [],
                          "by_source": [], "figures_differ": False, "changed_sources": [], "error": errors[i]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


def cmd_eval(args: argparse.Namespace) -> int:
    from .eval_runner import EvalOptions, eval_beir, eval_jsonl, format_table, parse_modes, write_report
    from .fusion import FusionConfig

    if args.report and args.report.suffix.lower() not in (".md", ".html", ".htm"):
        raise RagError(f"--report {args.report}: give a .md or .html file name")
    if args.answer_rate is not None and not args.calibrate:
        raise RagError("--answer-rate sets the calibration rule; add --calibrate")
    if args.answer_rate == 0:
        raise RagError("--answer-rate must be above 0")
    defaults = FusionConfig()
    options = EvalOptions(
        k=args.k,
        modes=tuple(parse_modes(args.modes)),
        fusion=FusionConfig(
            fusion=args.fusion,
            alpha=defaults.alpha if args.alpha is None else args.alpha,
            sentence_weight=defaults.sentence_weight if args.sentence_weight is None else args.sentence_weight,
            coverage_weight=defaults.coverage_weight if args.coverage_weight is None else args.coverage_weight,
        ),
        calibrate=args.calibrate,
        answer_rate=args.answer_rate,
        threshold=args.threshold,
    )
    from .locations import location, open_searcher

    where = location(args.index, args.store, args.collection)
    if where.milvus is not None and args.calibrate:
        raise RagError("--calibrate stores the abstention model in an --index folder; calibrate there (the store "
                       "keeps a calibration carried by its builds only from a folder built the same way)")
    if args.questions.is_dir():
        report = eval_beir(args.questions, args.cache, options, _log, args.model, args.precision, target=where.milvus)
    else:
        from .evaluation import load_questions

        if not args.questions.exists():
            raise RagError(f"questions file '{args.questions}' not found; give a JSONL file of questions or a BEIR folder")
        load_questions(args.questions)  # a bad file fails before the model loads
        searcher = open_searcher(where, args.model)
        report = eval_jsonl(args.questions, where, searcher, options)
    if args.report:
        written = write_report(report, args.report)
        _log("wrote " + ", ".join(str(p) for p in written))
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(format_table(report))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import format_report, run_bench

    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        raise RagError(f"--sizes takes a comma list of whole numbers, got {args.sizes!r}") from None
    if any(n < 1000 for n in sizes):
        raise RagError("--sizes must each be at least 1000")
    squad = args.squad if (args.squad / "corpus.jsonl").is_file() else None
    if not 1 <= args.rounds <= 10:
        raise RagError(f"--rounds must be between 1 and 10, got {args.rounds}")
    if not 0 <= args.large <= 10_000_000:
        raise RagError(f"--large must be a passage count from 0 to 10,000,000, got {args.large}")
    if args.large and squad is None:
        raise RagError("--large draws its text from SQuAD; give --squad DIR (a BEIR folder with corpus.jsonl)")
    if squad is None:
        _log(f"no SQuAD folder at {args.squad}; measuring the seeds only")
    squad2 = args.squad2 if (args.squad2 / "corpus.jsonl").is_file() else None
    report = run_bench(squad, squad2, sizes, args.rounds, _log, stores=not args.no_stores, large=args.large)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")


def print_answer(answer: Any, out: TextIO) -> None:
    """Ranked, cited passages for a terminal, the supporting sentence marked."""
    color = out.isatty()
    on, off = ("\033[1;33m", "\033[0m") if color else ("»", "«")
    verdict = "answered" if answer.answered else "not answered"
    out.write(f"{answer.question}\n\nsupport {answer.support:.2f} (threshold {answer.threshold:.2f}): {verdict}\n")
    if answer.missing:
        out.write(f"Not found in these passages: {', '.join(answer.missing)}\n")
    if not answer.answered:
        out.write("The sources don't answer this. Nearest passages, shown for reference only (not an answer):\n")
    out.write("\n")
    for hit in answer.hits:
        a, b = hit.highlight[0] - hit.start, hit.highlight[1] - hit.start
        body = hit.text[:a] + on + hit.text[a:b] + off + hit.text[b:]
        body = "\n".join("    " + line for line in body.splitlines())
        out.write(f"[{hit.rank}] support {hit.support:.2f}  {hit.title}\n")
        out.write(f"    {hit.source}, characters {hit.start}-{hit.end}\n{body}\n\n")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
