"""The command line's handlers: `rag index`, `rag ask`, `rag eval`, `rag bench`.

Each handler imports the pipeline it needs, so `rag --help` and argument errors answer at once.
Every failure the user can fix is a RagError, printed as one line on stderr with a non-zero
exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rag.errors import RagError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def cmd_index(args: argparse.Namespace) -> int:
    from rag.encoding import resolve_model
    from rag.index import build_encoder, existing_settings, index_lock, inspect_index, up_to_date
    from rag.locations import location
    from rag.sources import digests_of, load_documents
    from rag.types import ChunkingConfig

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
    from rag.locations import build_at, encoder_for_build, settings_at
    from rag.types import ChunkingConfig

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
    from rag.index import build_index

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

    from rag.sources import SOURCE_SUFFIXES

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
    from rag.checks import check_question

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
        from rag.evaluation import read_question_records

        batch = [(r["id"], r["question"]) for r in read_question_records(args.questions)]
    from rag.answer import refresh_hint
    from rag.api import OpenIndex
    from rag.locations import location

    index = OpenIndex(location(args.index, args.store, args.collection), args.model)
    if batch is None:
        answer = index.ask(args.question, args.k, abstain=args.abstain)
        if answer.changed_sources:
            hint = f"--index {args.index}" if args.store is None else f"--store {args.store} --collection {args.collection}"
            _warn(refresh_hint(list(answer.changed_sources), hint))
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False))
        else:
            print_answer(answer, sys.stdout)
        return 0
    answer_batch(index, batch, args.k, sys.stdout, abstain=args.abstain)
    return 0


def answer_batch(index: Any, batch: list[tuple[str, Any]], k: int, out: TextIO, chunk: int = 512,
                 abstain: str = "lenient") -> None:
    """One JSON line per input line; a bad question gets an "error" field, not a crash."""
    from rag.checks import check_question

    for lo in range(0, len(batch), chunk):
        part = batch[lo : lo + chunk]
        good: list[tuple[int, str]] = []
        errors: dict[int, str] = {}
        for i, (_, question) in enumerate(part):
            try:
                good.append((i, check_question(question)))
            except RagError as exc:
                errors[i] = str(exc)
        answers = dict(zip((i for i, _ in good), index.ask_many([q for _, q in good], k, abstain=abstain)))
        for i, (qid, question) in enumerate(part):
            if i in answers:
                record = {"id": qid, **answers[i].to_json()}
            else:
                record = {"id": qid, "question": question, "answered": False, "support": 0.0, "missing": [], "hits": [],
                          "by_source": [], "figures_differ": False, "changed_sources": [], "error": errors[i]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.answer import FusionConfig
    from rag.evaluation import (
        EvalOptions,
        eval_beir,
        eval_jsonl,
        format_table,
        parse_modes,
        write_report,
    )

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
    from rag.locations import location, open_searcher

    where = location(args.index, args.store, args.collection)
    if where.milvus is not None and args.calibrate:
        raise RagError("--calibrate stores the abstention model in an --index folder; calibrate there (the store "
                       "keeps a calibration carried by its builds only from a folder built the same way)")
    if args.questions.is_dir():
        report = eval_beir(args.questions, args.cache, options, _log, args.model, args.precision, target=where.milvus)
    else:
        from rag.evaluation import load_questions

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
    from rag.bench import format_report, run_bench

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
