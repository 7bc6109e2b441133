"""`rag bench`: every figure beside its own floor, side by side in one run, and its report."""

from __future__ import annotations

import os
import resource
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.bench.measure import (
    PRECISIONS,
    ROOT,
    build_figures,
    cold_figures,
    compile_project,
    neighbour_figures,
    query_figures,
    rag_index,
    squad_folder,
)
from rag.bench.scale import SCALE_QUESTIONS, large_figures, scale_figures, store_figures


def run_bench(squad: Path | None, squad2: Path | None, sizes: Sequence[int], rounds: int, log: Any,
              side_note: bool = True, stores: bool = True, large: int = 0) -> dict[str, Any]:
    from rag.evaluation import load_questions
    from rag.index import read_manifest

    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "rounds": rounds, "corpora": []}
    seed_questions = [q.question for q in load_questions(ROOT / "eval" / "seeds" / "dev.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log("making sure this machine keeps a verified copy of the model at each precision, and that this "
            "checkout's modules are compiled as scripts/setup.sh leaves them (not timed)")
        compile_project()
        for precision in PRECISIONS:
            rag_index(ROOT / "seeds", work / f"warm-{precision}", precision)
        corpora: list[tuple[str, Path, list[str], int]] = [("seeds", ROOT / "seeds", seed_questions, 1)]
        squad_questions: list[str] = []
        if squad is not None:
            squad_questions = squad_folder(squad, work / "squad-src")
            corpora.append(("squad-v1.1-dev", work / "squad-src", squad_questions[:300], rounds))
        built: dict[str, Path] = {}
        for name, sources, questions, corpus_rounds in corpora:
            figures: dict[str, Any] = {"corpus": name, "documents": sum(1 for p in sources.rglob("*") if p.is_file())}
            figures["build"] = build_figures(name, sources, work, corpus_rounds, log)
            index_dir = work / f"{name}-int8"
            figures["passages"] = read_manifest(index_dir).passages
            log(f"{name}: warm queries")
            figures.update(query_figures(index_dir, questions, side_note and name == "seeds"))
            log(f"{name}: cold starts")
            figures.update(cold_figures(sources, index_dir, questions[0]))
            report["corpora"].append(figures)
            built[name] = index_dir
            if stores:
                report.setdefault("stores", []).append(store_figures(name, sources, questions, work, log))
        if large and squad is not None:
            squad_figures = report["corpora"][-1]
            report["large"] = large_figures(squad, work, large, squad_figures["passages"] / squad_figures["documents"], log)
        if squad2 is not None:
            log("squad-v2.0-dev-half: building its index for the neighbour figures (not timed)")
            squad_folder(squad2, work / "squad2-src")
            rag_index(work / "squad2-src", work / "squad2-int8", "int8")
            built["squad-v2.0-dev-half"] = work / "squad2-int8"
        log("neighbour structure: real passages beside synthetic ones")
        report["neighbours"] = neighbour_figures(built)
        if sizes:
            from rag.encoding import ONNX_DIR
            from rag.index import current_generation

            fit_on = built.get("squad-v1.1-dev", built["seeds"])
            questions = squad_questions[SCALE_QUESTIONS]
            report["scale_questions"] = f"squad-v1.1-dev questions {SCALE_QUESTIONS.start}-{SCALE_QUESTIONS.start + len(questions) - 1}"
            if not questions:
                questions, report["scale_questions"] = seed_questions, "seeds dev questions"
            gen = current_generation(fit_on)
            onnx = gen / ONNX_DIR if gen is not None and (gen / ONNX_DIR).is_dir() else None
            report["scale_fitted_on"] = "squad-v1.1-dev" if "squad-v1.1-dev" in built else "seeds"
            report["scale"] = scale_figures(sizes, fit_on, questions, onnx, log)
    report["bench_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['cpu_count']} CPUs; builds alternated over {report['rounds']} rounds (SQuAD), medians"]
    for c in report["corpora"]:
        b, q, e = c["build"], c["query_ms"], c["encode_question_ms"]
        lines += [
            f"{c['corpus']}: {c['documents']:,} files, {c['passages']:,} passages",
            f"  build (rag index, fresh process): int8 {b['int8_s']:.1f} s vs fp32 {b['fp32_s']:.1f} s: "
            f"{b['int8_over_fp32']:.2f}x (rounds {', '.join(f'{r:.2f}x' for r in b['int8_over_fp32_rounds'])}); "
            f"peak {b['int8_rss_mb']:.0f} / {b['fp32_rss_mb']:.0f} MB",
            f"  warm query p50/p95/p99 {q['p50']:.1f}/{q['p95']:.1f}/{q['p99']:.1f} ms vs {c['query_encoder']} encoding the "
            f"question alone {e['p50']:.1f}/{e['p95']:.1f}/{e['p99']:.1f} ms: {c['query_over_encode']:.2f}x"
            + (f" (side note, another encoder: sentence-transformers encodes it in {c['side_note_st_encode_question_ms']:.1f} ms)"
               if "side_note_st_encode_question_ms" in c else ""),
            f"  cold start: rag ask {c['ask_cold_s']:.2f} s (peak {c['ask_rss_mb']:.0f} MB), app ready {c['app_ready_s']:.1f} s "
            f"(peak {c['app_rss_mb']:.0f} MB)",
        ]
    big = report.get("large")
    if big:
        lines.append(f"large real-text corpus (SQuAD sentences drawn into {big['files']:,} paragraphs): rag index of "
                     f"{big['passages']:,} passages in {big['seconds']:.0f} s ({big['passages_per_s']:.0f} passages/s), "
                     f"peak {big['peak_rss_mb']:.0f} MB")
    n = report.get("neighbours")
    if n:
        lines.append(f"neighbour structure (cosine to the 1st / 10th nearest passage, p10/p50/p90; tolerance on medians {n['tolerance']}):")
        for r in n["corpora"]:
            fmt = lambda s: f"{s['p10']:.2f}/{s['p50']:.2f}/{s['p90']:.2f}"  # noqa: E731
            lines.append(
                f"  {r['corpus']:<20} {r['passages']:>6,}  real {fmt(r['real_1st'])} | {fmt(r['real_10th'])}   "
                f"synthetic {fmt(r['synthetic_1st'])} | {fmt(r['synthetic_10th'])}   {'within' if r['within_tolerance'] else 'OUTSIDE'}"
            )
    for st in report.get("stores", []):
        f, m, r = st["folder"], st["milvus-lite"], st["milvus_over_folder"]
        lines.append(f"stores on {st['corpus']} ({f['passages']:,} passages; build, warm ask p50/p99, process + engine memory):")
        lines.append(f"  folder      {f['build_s']:.1f} s, {f['ask_p50_ms']:.1f}/{f['ask_p99_ms']:.1f} ms, {f['rss_mb']:.0f} MB")
        lines.append(f"  milvus-lite {m['build_s']:.1f} s, {m['ask_p50_ms']:.1f}/{m['ask_p99_ms']:.1f} ms, {m['rss_mb']:.0f} MB "
                     f"({r['build_s']:.2f}x / {r['ask_p50_ms']:.2f}x / {r['rss_mb']:.2f}x the folder's)")
    if report.get("scale"):
        lines.append(f"scale: whole synthetic indexes (vectors fitted on {report['scale_fitted_on']}), "
                     f"{report.get('scale_questions', 'real questions')}, one at a time:")
        lines.append(f"  {'n':>9}  {'dense index':<24} {'recall@10':>9} {'answer p50/p99 ms':>18} {'searcher MB':>11} "
                     f"{'(heap/mapped)':>13} {'MB per 1M':>9} {'disk MB':>8}")
        for s in report["scale"]:
            a = s.get("answer_ms", {"p50": float("nan"), "p99": float("nan")})
            lines.append(
                f"  {s['n']:>9,}  {s['index']:<24} {s['recall@10']:>9.3f} {a['p50']:>8.1f}/{a['p99']:<9.1f} {s['searcher_rss_mb']:>11.0f} "
                f"{s['searcher_anon_mb']:>6.0f}/{s['searcher_file_mb']:<6.0f} {s['rss_per_million_mb']:>9.0f} {s['disk_mb']:>8.0f}"
            )
    return "\n".join(lines)
