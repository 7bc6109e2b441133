"""`rag eval`: run a question set through every requested mode and report, side by side.

Questions are encoded once, in the same chunks `rag ask --questions` uses, and each mode ranks
from the same vectors, so the figures agree with a count made from `rag ask --json` output.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import RagError
from .evaluation import (
    METRICS,
    Question,
    abstention,
    answer_hits,
    answer_passages,
    containment_judgements,
    document_run,
    failures,
    ir_metrics,
    load_beir,
    load_questions,
    percentile,
    source_hits,
)
from .search import MODES, SearchConfig, Searcher, calibrate_threshold
from .store import FORMAT_VERSION, Index, open_index, read_manifest, replace_manifest
from .types import Answer, ChunkingConfig


@dataclass(frozen=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]
    curve: dict[int, float]  # hit@k for k = 1..10
    extra: dict[str, float]  # answer@k, source@k where the set allows
    latency_ms: dict[str, float]
    abstention: dict[str, int]
    failures: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "metrics": {**{m: round(self.metrics[m], 4) for m in METRICS}, **{m: round(v, 4) for m, v in self.extra.items()}},
            "hit_at_k": {str(k): round(v, 4) for k, v in self.curve.items()},
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "abstention": self.abstention,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class EvalReport:
    name: str
    questions: int
    answerable: int
    k: int
    index: str
    passages: int
    relevance: str
    encode_ms: float
    threshold: float
    results: list[ModeResult]
    calibration: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "questions": self.questions,
            "answerable": self.answerable,
            "k": self.k,
            "index": self.index,
            "passages": self.passages,
            "relevance": self.relevance,
            "encode_ms_per_question": round(self.encode_ms, 2),
            "abstain_threshold": self.threshold,
            "results": [r.to_json() for r in self.results],
        }
        if self.calibration is not None:
            data["calibration"] = self.calibration
        return data


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise RagError(f"--modes takes a comma list of {', '.join(MODES)}; got {text!r}")
    return list(dict.fromkeys(modes))


def _search_all(searcher: Searcher, questions: Sequence[Question], vectors: Any, k: int) -> tuple[list[Answer], list[float]]:
    answers, millis = [], []
    for q, v in zip(questions, vectors):
        started = time.perf_counter()
        answers.append(searcher.answer(q.question, v, k))
        millis.append((time.perf_counter() - started) * 1000)
    return answers, millis


def evaluate(
    index: Index,
    encoder: Any,
    questions: Sequence[Question],
    k: int,
    modes: Sequence[str],
    judge: Callable[[Sequence[Question], Sequence[Answer]], tuple[dict, dict]],
    depth: int,
) -> tuple[list[ModeResult], float, list[Answer]]:
    """Per-mode results; also the per-question encode time and the hybrid (or first) answers."""
    searchers = {m: Searcher(index, encoder, SearchConfig(mode=m)) for m in modes}
    first = searchers[modes[0]]
    started = time.perf_counter()
    vectors = first.encode([q.question for q in questions])
    encode_ms = (time.perf_counter() - started) * 1000 / max(len(questions), 1)
    results: list[ModeResult] = []
    kept: list[Answer] = []
    for mode, searcher in searchers.items():
        answers, millis = _search_all(searcher, questions, vectors, depth)
        qrels, run = judge(questions, answers)
        metrics, curve = ir_metrics(qrels, run)
        extra = {**answer_hits(questions, answers, (1, 5, k)), **source_hits(questions, answers, (1, 5))}
        results.append(
            ModeResult(
                mode=mode,
                metrics=metrics,
                curve=curve,
                extra=extra,
                latency_ms={"p50": percentile(millis, 50), "p95": percentile(millis, 95)},
                abstention=abstention(questions, answers),
                failures=failures(questions, answers, run, qrels, k),
            )
        )
        if mode == "hybrid" or not kept:
            kept = answers
    return results, encode_ms, kept


def eval_jsonl(path: Path, index_dir: Path, searcher: Searcher, k: int, modes: Sequence[str], calibrate: bool) -> EvalReport:
    """A JSONL question set against the index `searcher` serves (opened from `index_dir`);
    relevance is answer containment."""
    questions = load_questions(path)
    index = searcher.index
    relevant = answer_passages(questions, [(p.id, p.text) for p in index.passages])

    def judge(qs: Sequence[Question], answers: Sequence[Answer]) -> tuple[dict, dict]:
        return containment_judgements(qs, answers, relevant)

    results, encode_ms, answers = evaluate(index, searcher.encoder, questions, k, modes, judge, k)
    threshold = index.manifest.abstain_threshold
    calibration = None
    if calibrate:
        calibration = calibrate_index(index_dir, index, questions, answers, path)
        threshold = calibration["threshold"]
    return EvalReport(
        name=path.name,
        questions=len(questions),
        answerable=sum(q.answerable for q in questions),
        k=k,
        index=str(index_dir),
        passages=len(index.passages),
        relevance="a passage is relevant when its text contains an answer string (case-insensitive, whitespace-normalized)",
        encode_ms=encode_ms,
        threshold=threshold,
        results=results,
        calibration=calibration,
    )


def calibrate_index(index_dir: Path, index: Index, questions: Sequence[Question], answers: Sequence[Answer], path: Path) -> dict[str, Any]:
    """Fit the abstention threshold on a labelled set and store it with the index."""
    positive = [a.support for q, a in zip(questions, answers) if q.answerable]
    negative = [a.support for q, a in zip(questions, answers) if not q.answerable]
    if not positive or not negative:
        raise RagError("--calibrate needs both answerable and unanswerable questions (\"answerable\": false)")
    threshold = round(calibrate_threshold(positive, negative), 4)
    result = {
        "threshold": threshold,
        "previous_threshold": index.manifest.abstain_threshold,
        "questions": path.name,
        "answerable": len(positive),
        "unanswerable": len(negative),
        "answerable_abstained_rate": sum(s < threshold for s in positive) / len(positive),
        "unanswerable_answered_rate": sum(s >= threshold for s in negative) / len(negative),
    }
    manifest = replace(
        index.manifest,
        abstain_threshold=threshold,
        abstain_calibrated=True,
        extra={**index.manifest.extra, "calibration": result},
    )
    replace_manifest(index_dir, manifest)
    return result


def beir_cache_dir(cache: Path, name: str, corpus_sha256: str, model: str, chunking: ChunkingConfig) -> Path:
    """A folder per corpus and settings, so an unchanged benchmark reuses its index."""
    key = json.dumps([corpus_sha256, model, chunking.to_dict(), FORMAT_VERSION], sort_keys=True)
    return cache / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def eval_beir(folder: Path, cache: Path, encoder: Any, k: int, modes: Sequence[str], log: Callable[[str], None]) -> EvalReport:
    """A BEIR folder: index its corpus in the cache (once), rank documents by best passage."""
    from .build import build_index
    from .sources import plain_document

    data = load_beir(folder)
    index_dir = beir_cache_dir(cache, data.name, data.corpus_sha256, encoder.name, ChunkingConfig())
    try:
        read_manifest(index_dir)
        log(f"reusing the index of {data.name} in {index_dir}")
    except RagError:
        log(f"indexing {len(data.corpus)} passages of {data.name} into {index_dir} (once)")
        docs = [d for d in (plain_document(i, text, title) for i, title, text in data.corpus) if d is not None]
        report = build_index(folder, index_dir, encoder, progress=True, documents=docs)
        log(f"indexed into {report.passages} passages in {report.seconds:.0f} s")
    index = open_index(index_dir)
    depth = min(4 * k, 100)

    def judge(qs: Sequence[Question], answers: Sequence[Answer]) -> tuple[dict, dict]:
        return data.qrels, document_run(answers, qs, k)

    results, encode_ms, _ = evaluate(index, encoder, data.questions, k, modes, judge, depth)
    return EvalReport(
        name=data.name,
        questions=len(data.questions),
        answerable=len(data.questions),
        k=k,
        index=str(index_dir),
        passages=len(index.passages),
        relevance="qrels at document level; a document ranks where its best passage does",
        encode_ms=encode_ms,
        threshold=index.manifest.abstain_threshold,
        results=results,
    )


def _extra_columns(report: EvalReport) -> list[str]:
    names = {m for r in report.results for m in r.extra}
    return sorted(names, key=lambda m: (m.split("@")[0], int(m.split("@")[1])))


def format_table(report: EvalReport) -> str:
    """The side-by-side table, abstention and failure counts, as plain text."""
    extras = _extra_columns(report)
    head = ["mode", *METRICS, *extras, "p50 ms", "p95 ms"]
    rows = [
        [r.mode, *(f"{r.metrics[m]:.3f}" for m in METRICS), *(f"{r.extra.get(m, float('nan')):.3f}" for m in extras),
         f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p95']:.1f}"]
        for r in report.results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [
        f"{report.name}: {report.questions} questions ({report.answerable} answerable), top {report.k}, "
        f"index {report.index} ({report.passages} passages)",
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
        *("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows),
        f"query encoding: {report.encode_ms:.1f} ms per question (batched); p50/p95 are the search alone",
    ]
    a = report.results[0].abstention
    if a["unanswerable"] or a["answerable_abstained"]:
        lines.append(
            f"abstention (threshold {report.threshold:.3f}): {a['unanswerable_abstained']}/{a['unanswerable']} "
            f"unanswerable abstained, {a['answerable_abstained']}/{a['answerable']} answerable wrongly abstained"
        )
    if report.calibration:
        c = report.calibration
        lines.append(
            f"calibrated threshold {c['threshold']:.4f} (was {c['previous_threshold']:.4f}), stored with the index: "
            f"{c['answerable_abstained_rate']:.1%} of answerable questions would abstain, "
            f"{c['unanswerable_answered_rate']:.1%} of unanswerable ones would be answered"
        )
    for r in report.results:
        lines.append(f"failures ({r.mode}): {len(r.failures)} answerable questions with nothing relevant in the top {report.k}")
        for f in r.failures[:10]:
            first = f["first"]
            shown = " ".join(first["text"].split())[:100] if first else "(nothing)"
            lines.append(f"  {f['id']}: {f['question']}  -> first: {first['source'] if first else ''}: {shown}")
        if len(r.failures) > 10:
            lines.append(f"  ... and {len(r.failures) - 10} more (see --json or --report)")
    return "\n".join(lines)


def write_report(report: EvalReport, path: Path) -> list[Path]:
    """Write the table, failures and a hit@k plot (PNG beside it) as Markdown or HTML."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".md", ".html", ".htm"):
        raise RagError(f"--report {path}: give a .md or .html file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    plot = path.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for r in report.results:
        ks = sorted(r.curve)
        ax.plot(ks, [r.curve[k] for k in ks], marker="o", label=r.mode)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k (share of answerable questions)")
    ax.set_title(f"{report.name}: hit@k by mode")
    ax.set_xticks(list(range(1, 11)))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)

    table = format_table(report).splitlines()
    extras = _extra_columns(report)
    cols = ["mode", *METRICS, *extras, "p50 ms", "p95 ms"]
    rows = [[r.mode, *(f"{r.metrics[m]:.3f}" for m in METRICS), *(f"{r.extra.get(m, float('nan')):.3f}" for m in extras),
             f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p95']:.1f}"] for r in report.results]
    if path.suffix.lower() == ".md":
        parts = [f"# Evaluation: {report.name}", "", table[0], "", f"Relevance: {report.relevance}.", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        notes = [line for line in table[2 + len(report.results) :] if not line.startswith(("  ", "failures"))]
        parts += ["", *notes, "",
                  f"![hit@k by mode]({plot.name})", ""]
        for r in report.results:
            parts += [f"## Failures: {r.mode} ({len(r.failures)})", ""]
            for f in r.failures:
                first = f["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                parts.append(f"- `{f['id']}` {f['question']} (answers: {', '.join(f['answers']) or 'qrels'}) — first: "
                             f"`{first['source'] if first else ''}` {shown}")
            parts.append("")
        path.write_text("\n".join(parts), "utf-8")
    else:
        e = html.escape
        body = [f"<h1>Evaluation: {e(report.name)}</h1>", f"<p>{e(table[0])}</p><p>Relevance: {e(report.relevance)}.</p>",
                "<table border=1 cellpadding=4><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        body += ["</table>", f'<p><img src="{e(plot.name)}" alt="hit@k by mode"></p>']
        for r in report.results:
            body.append(f"<h2>Failures: {e(r.mode)} ({len(r.failures)})</h2><ul>")
            for f in r.failures:
                first = f["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                body.append(f"<li><code>{e(str(f['id']))}</code> {e(f['question'])} — first: <code>{e(first['source'] if first else '')}</code> {e(shown)}</li>")
            body.append("</ul>")
        path.write_text("<!doctype html><meta charset=utf-8><title>Evaluation</title>" + "\n".join(body), "utf-8")
    return [path, plot]
