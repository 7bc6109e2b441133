"""`rag eval`'s report: the side-by-side table, and the JSON and plots written beside it."""

from __future__ import annotations

from pathlib import Path

from rag.errors import RagError
from rag.evaluation.metrics import METRICS
from rag.evaluation.runner import EvalReport, ModeResult


def _extra_columns(report: EvalReport) -> list[str]:
    names = {m for r in report.results for m in r.extra}
    return sorted(names, key=lambda m: (m.split("@")[0], int(m.split("@")[1])))


def _rows(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    extras = _extra_columns(report)
    head = ["mode", *METRICS, *extras, "p50 ms", "p95 ms"]
    rows = [
        [r.mode, *(f"{r.metrics[m]:.3f}" for m in METRICS), *(f"{r.extra.get(m, float('nan')):.3f}" for m in extras),
         f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p95']:.1f}"]
        for r in report.results
    ]
    return head, rows


def _abstention_line(report: EvalReport, r: ModeResult) -> str:
    a = r.abstention
    parts = [f"abstention ({r.mode}, threshold {report.threshold:.3f}):"]
    if a["answerable"]:
        parts.append(f"answered {a['answer_rate']:.1%} of {a['answerable']} answerable;")
    if a["unanswerable"]:
        parts.append(f"abstained on {a['abstain_rate']:.1%} of {a['unanswerable']} unanswerable; AUROC {a['auroc']:.3f}")
    if "strict_threshold" in a and a["strict_threshold"] != report.threshold:
        strict = [f"| strict (threshold {a['strict_threshold']:.3f}):"]
        if a["answerable"]:
            strict.append(f"answered {a['strict_answer_rate']:.1%};")
        if a["unanswerable"]:
            strict.append(f"abstained on {a['strict_abstain_rate']:.1%}")
        parts.extend(strict)
    return " ".join(parts)


def format_table(report: EvalReport) -> str:
    """The side-by-side table, abstention and failure counts, as plain text."""
    head, rows = _rows(report)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    f = report.fusion
    lines = [
        f"{report.name}: {report.questions} questions ({report.answerable} answerable), top {report.k}, "
        f"index {report.index} ({report.passages} passages); hybrid = {f.get('fusion')}"
        + (f" alpha {f.get('alpha')}, sentence {f.get('sentence_weight')}, coverage {f.get('coverage_weight')}" if f.get("fusion") == "convex" else ""),
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
        *("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows),
        f"query encoding: {report.encode_ms:.1f} ms per question (batched); p50/p95 are the search alone",
    ]
    lines += [_abstention_line(report, r) for r in report.results]
    for r in report.results:
        b = r.by_source
        if b:
            parts = [f"by_source ({r.mode}): covers {b['by_source_recall']:.1%} of the sources that answer, adds "
                     f"{b['by_source_unrelated']:.2f} other sources per question"]
            if "by_source_multi_recall" in b:
                parts.append(f"; answered by several: {b['by_source_multi_recall']:.1%} covered ({b['by_source_multi_questions']:.0f} questions)")
            if "by_source_single_unrelated" in b:
                parts.append(f"; answered by one: {b['by_source_single_unrelated']:.2f} others added ({b['by_source_single_questions']:.0f} questions)")
            lines.append("".join(parts))
    if report.calibration:
        c = report.calibration
        oos = c["out_of_sample"]
        best = oos["weights_and_threshold"] if c["refit_weights"] else oos["threshold_only"]
        lines.append(
            f"calibrated ({c['rule']}; {'weights and threshold' if c['refit_weights'] else 'threshold only'}): threshold "
            f"{c['threshold']:.4f} (was {c['previous_threshold']:.4f}), stored with the index. Out of sample, each of "
            f"{c['groups']} groups left out in turn: answered {best['answer_rate']:.1%} of answerable, abstained on "
            f"{best['abstain_rate']:.1%} of unanswerable, AUROC {best['auroc']:.3f}"
        )
    for r in report.results:
        lines.append(f"failures ({r.mode}): {len(r.failures)} answerable questions with nothing relevant in the top {report.k}")
        for fl in r.failures[:10]:
            first = fl["first"]
            shown = " ".join(first["text"].split())[:100] if first else "(nothing)"
            lines.append(f"  {fl['id']}: {fl['question']}  -> first: {first['source'] if first else ''}: {shown}")
        if len(r.failures) > 10:
            lines.append(f"  ... and {len(r.failures) - 10} more (see --json or --report)")
    return "\n".join(lines)


def write_report(report: EvalReport, path: Path) -> list[Path]:
    """Write the table, failures, a hit@k plot and a risk-coverage plot (one PNG beside it)
    as Markdown or HTML."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".md", ".html", ".htm"):
        raise RagError(f"--report {path}: give a .md or .html file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    plot = path.with_suffix(".png")
    fig, (ax, rc) = plt.subplots(1, 2, figsize=(11, 4))
    for r in report.results:
        ks = sorted(r.curve)
        ax.plot(ks, [r.curve[k] for k in ks], marker="o", label=r.mode)
        if len(r.risk[0]):
            rc.plot(r.risk[0], r.risk[1], label=r.mode)
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k (share of answerable questions)")
    ax.set_title(f"{report.name}: hit@k by mode")
    ax.set_xticks(list(range(1, 11)))
    ax.grid(alpha=0.3)
    ax.legend()
    rc.set_xlabel("coverage (share of questions answered)")
    rc.set_ylabel(f"risk (answered, no answer in the top {report.k})")
    rc.set_title("risk-coverage, as the support threshold falls")
    rc.set_xlim(0, 1)
    rc.set_ylim(0, 1)
    rc.grid(alpha=0.3)
    rc.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)

    table = format_table(report).splitlines()
    cols, rows = _rows(report)
    notes = [line for line in table[2 + len(report.results) :] if not line.startswith(("  ", "failures"))]
    if path.suffix.lower() == ".md":
        parts = [f"# Evaluation: {report.name}", "", table[0], "", f"Relevance: {report.relevance}.", "",
                 "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        parts += ["", *notes, "", f"![hit@k and risk-coverage by mode]({plot.name})", ""]
        for r in report.results:
            parts += [f"## Failures: {r.mode} ({len(r.failures)})", ""]
            for fl in r.failures:
                first = fl["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                parts.append(f"- `{fl['id']}` {fl['question']} (answers: {', '.join(fl['answers']) or 'qrels'}) — first: "
                             f"`{first['source'] if first else ''}` {shown}")
            parts.append("")
        path.write_text("\n".join(parts), "utf-8")
    else:
        e = html.escape
        body = [f"<h1>Evaluation: {e(report.name)}</h1>", f"<p>{e(table[0])}</p><p>Relevance: {e(report.relevance)}.</p>",
                "<table border=1 cellpadding=4><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"]
        body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        body += ["</table>", *(f"<p>{e(n)}</p>" for n in notes), f'<p><img src="{e(plot.name)}" alt="hit@k and risk-coverage by mode"></p>']
        for r in report.results:
            body.append(f"<h2>Failures: {e(r.mode)} ({len(r.failures)})</h2><ul>")
            for fl in r.failures:
                first = fl["first"]
                shown = " ".join(first["text"].split())[:200] if first else "(nothing)"
                body.append(f"<li><code>{e(str(fl['id']))}</code> {e(fl['question'])} — first: <code>{e(first['source'] if first else '')}</code> {e(shown)}</li>")
            body.append("</ul>")
        path.write_text("<!doctype html><meta charset=utf-8><title>Evaluation</title>" + "\n".join(body), "utf-8")
    return [path, plot]
