"""`rag bench`'s measurements on real corpora: builds, warm and cold queries, memory.

  * build: `rag index` as a process at int8 (the default) and at fp32, alternated over
    rounds so that drift in machine speed hits both; the ratio is the figure;
  * warm query latency of the served searcher against the same encoder alone encoding the
    question (the floor a question cannot beat), interleaved;
  * cold start: process start to printed answer for `rag ask`, launch to ready for the app;
  * peak resident memory of each process; neighbour structure of real against synthetic vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the checkout: rag/bench/measure.py


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def peak_rss_mb(pid: int) -> float | None:
    """The process's own high-water RSS (VmHWM) in MB, or None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")]
    return values[0] / 1024 if values else None


def run_measured(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process, from start to exit.

    The peak is read from /proc while the child runs: getrusage/wait4 would report at least
    this process's own peak, which Linux carries into a child across fork and exec."""
    import threading

    started = time.perf_counter()
    proc = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    peak = [0.0]

    def watch() -> None:
        while proc.poll() is None:
            value = peak_rss_mb(proc.pid)
            if value is not None:
                peak[0] = max(peak[0], value)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    watcher.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {err.strip().splitlines()[-1:]}")
    return seconds, peak[0], out


def app_cold_start(sources: Path, index: Path) -> tuple[float, float]:
    """Launch to ready for the app on an existing index, and its peak RSS (MB) by then."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--sources", str(sources), "--index", str(index), "--port", str(port)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("ready in "):
                break
        else:
            raise RuntimeError("the app did not start")
        seconds = time.perf_counter() - started
        peak = peak_rss_mb(proc.pid) or 0.0
    finally:
        proc.terminate()
        proc.wait(30)
    return seconds, peak


ENV = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
PRECISIONS = ("int8", "fp32")
NEIGHBOUR_TOLERANCE = 0.07  # synthetic vs real, same size: |difference| of the median cosine to
# the 1st and to the 10th nearest neighbour (docs/speed.md, "Scale")


def rag_index(sources: Path, index: Path, precision: str) -> tuple[float, float]:
    """(seconds, peak MB) of `rag index` as a fresh process."""
    seconds, rss, _ = run_measured(
        [sys.executable, "-m", "rag", "index", "--sources", str(sources), "--index", str(index), "--precision", precision, "--quiet"], ENV
    )
    return seconds, rss


def build_figures(name: str, sources: Path, work: Path, rounds: int, log: Any) -> dict[str, Any]:
    """int8 and fp32 builds of one corpus, alternated; leaves an index per precision in `work`."""
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in PRECISIONS}
    for r in range(rounds):
        for precision in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            log(f"{name}: rag index --precision {precision} (round {r + 1} of {rounds})")
            target = work / f"{name}-{precision}"
            shutil.rmtree(target, ignore_errors=True)
            runs[precision].append(rag_index(sources, target, precision))
    ratios = [a / b for (a, _), (b, _) in zip(runs["int8"], runs["fp32"])]
    return {
        "int8_s": float(np.median([s for s, _ in runs["int8"]])),
        "fp32_s": float(np.median([s for s, _ in runs["fp32"]])),
        "int8_over_fp32": float(np.median(ratios)),
        "int8_over_fp32_rounds": ratios,
        "int8_rss_mb": max(m for _, m in runs["int8"]),
        "fp32_rss_mb": max(m for _, m in runs["fp32"]),
    }


def query_figures(index_dir: Path, questions: Sequence[str], side_note: bool) -> dict[str, Any]:
    """Warm latency of the searcher `rag ask` opens against its own encoder alone."""
    from rag.answer import Searcher
    from rag.encoding import question_encoder
    from rag.index import open_index

    index = open_index(index_dir)
    served = question_encoder(index.path, index.manifest.model)
    searcher = Searcher(index, served)
    for q in questions[:10]:
        searcher.ask(q)
    encode, ask = [], []
    for q in questions:
        t = time.perf_counter()
        served.encode_queries([q])
        encode.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        searcher.ask(q, k=5)
        ask.append((time.perf_counter() - t) * 1000)
    quantiles = (("p50", 50), ("p95", 95), ("p99", 99))
    out: dict[str, Any] = {
        "query_encoder": f"{type(served).__name__} ({index.manifest.precision})",
        "query_ms": {p: pct(ask, q) for p, q in quantiles},
        "encode_question_ms": {p: pct(encode, q) for p, q in quantiles},
    }
    out["query_over_encode"] = out["query_ms"]["p50"] / out["encode_question_ms"]["p50"]
    if side_note:  # another encoder: sentence-transformers (torch) encoding the same question
        from rag.encoding import SentenceTransformerEncoder

        model = SentenceTransformerEncoder(index.manifest.model)
        model.encode_queries(questions[:5])
        st = []
        for q in questions:
            t = time.perf_counter()
            model.encode_queries([q])
            st.append((time.perf_counter() - t) * 1000)
        out["side_note_st_encode_question_ms"] = pct(st, 50)
    return out


def cold_figures(sources: Path, index_dir: Path, question: str, runs: int = 5) -> dict[str, Any]:
    """Process start to printed answer for `rag ask` (median of `runs`), launch to ready for the app."""
    asks = [run_measured([sys.executable, "-m", "rag", "ask", question, "--index", str(index_dir), "--json"], ENV)
            for _ in range(runs)]
    apps = [app_cold_start(sources, index_dir) for _ in range(2)]
    return {
        "ask_cold_s": float(np.median([s for s, _, _ in asks])),
        "ask_rss_mb": max(m for _, m, _ in asks),
        "app_ready_s": float(np.median([s for s, _ in apps])),
        "app_rss_mb": max(m for _, m in apps),
    }


def corpus_levels(index_dir: Path) -> tuple[np.ndarray, list[list[str]], np.ndarray, np.ndarray]:
    """(passage vectors, [titles, sources] per passage, sentence vectors, passage row of each
    sentence) of a built index, for the neighbour model."""
    from rag.index import open_index

    index = open_index(index_dir)
    passages = list(index.passages)
    titles = [index.manifest.sources[p.source].title for p in passages]
    owner = np.repeat(np.arange(len(passages)), [len(p.sentences) for p in passages])
    return np.asarray(index.vectors), [titles, [p.source for p in passages]], np.asarray(index.sentence_vectors), owner


def neighbour_figures(indexes: dict[str, Path]) -> dict[str, Any]:
    """Per real corpus: its passages' 1st- and 10th-neighbour cosines beside those of a synthetic
    set of the same size drawn from the model fitted on it."""
    from rag.bench.synthetic import fit, neighbour_cosines, sample, summary

    out: dict[str, Any] = {"tolerance": NEIGHBOUR_TOLERANCE, "corpora": []}
    for name, index_dir in indexes.items():
        vectors, levels, sentences, owner = corpus_levels(index_dir)
        model = fit(vectors, levels, sentences, owner)
        synthetic, _ = sample(model, len(vectors), np.random.default_rng(1))
        real1, real10 = neighbour_cosines(vectors)
        syn1, syn10 = neighbour_cosines(synthetic)
        row = {"corpus": name, "passages": len(vectors), "real_1st": summary(real1), "real_10th": summary(real10),
               "synthetic_1st": summary(syn1), "synthetic_10th": summary(syn10)}
        row["within_tolerance"] = bool(
            abs(row["real_1st"]["p50"] - row["synthetic_1st"]["p50"]) <= NEIGHBOUR_TOLERANCE
            and abs(row["real_10th"]["p50"] - row["synthetic_10th"]["p50"]) <= NEIGHBOUR_TOLERANCE
        )
        out["corpora"].append(row)
    return out


def rss_parts() -> dict[str, float]:
    """This process's resident memory in MB: total, anonymous (heap) and file-backed (mapped)."""
    status = Path("/proc/self/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("Rss") or line.startswith("VmRSS")}
    return {"rss_mb": values.get("VmRSS", 0.0), "anon_mb": values.get("RssAnon", 0.0), "file_mb": values.get("RssFile", 0.0)}


def save_model(model: Any, path: Path) -> None:
    """A fitted VectorModel as one .npz of plain arrays (no pickle), for the scale workers."""
    arrays = {"mean": model.mean, "levels": np.array(len(model.factors) - 1), "sentence_sd": np.array(model.sentence_sd),
              "passage_scales": model.passage_scales}
    for i, (f, c, s) in enumerate(zip(model.factors, model.children, model.spreads)):
        arrays[f"factor{i}"], arrays[f"children{i}"], arrays[f"spread{i}"] = f, c, s
    np.savez(path, **arrays)


# index's settings were chosen on the first 200 (docs/speed.md, "Scale"), so these are held out
def squad_folder(squad: Path, into: Path) -> list[str]:
    """One titled file per SQuAD paragraph, as a user's folder of articles would be; returns
    its questions."""
    into.mkdir(parents=True, exist_ok=True)
    for line in open(squad / "corpus.jsonl", encoding="utf-8"):
        r = json.loads(line)
        (into / f"{r['_id']}.txt").write_text(f"= {r.get('title', '')} =\n\n{r['text']}\n", "utf-8")
    return [json.loads(line)["text"] for line in open(squad / "queries.jsonl", encoding="utf-8")]


def compile_project() -> None:
    """Compile the project's modules, as `scripts/setup.sh` does, so that the cold starts are
    measured as a user's set-up checkout runs them (not after an edit left a stale cache)."""
    import compileall

    compileall.compile_dir(ROOT / "rag", quiet=1)
