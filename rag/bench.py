"""`rag bench`: speed and memory, each figure beside its own floor, side by side in one run.

For each corpus (the seeds, and SQuAD v1.1 dev when its folder is given):
  * build: `rag index` as a process at int8 (the default) and at fp32, alternated over
    rounds so that drift in machine speed hits both; the ratio is the figure;
  * warm query latency of the served searcher against the same encoder alone encoding the
    question (the floor a question cannot beat), interleaved; sentence-transformers encoding
    it is a labelled side note, another encoder;
  * cold start: process start to printed answer for `rag ask`, launch to ready for the app;
  * peak resident memory of each process.
Neighbour structure: the cosine to the 1st and 10th nearest neighbour for the real passage
vectors of each corpus beside a synthetic set of the same size (rag.synthetic).
Scale: whole indexes of synthetic passages (vectors from the model fitted on SQuAD, texts of
real sentences) written by the same code as a build, opened by the same code as `rag ask`:
recall@10 of the dense index against exact search for real questions, end-to-end `answer()`
latency, and the memory of the opened searcher. Each size runs in its own process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
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
    from .onnx_encoder import question_encoder
    from .search import Searcher
    from .store import open_index

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
        from .embedding import SentenceTransformerEncoder

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
    from .store import open_index

    index = open_index(index_dir)
    passages = list(index.passages)
    titles = [index.manifest.sources[p.source].title for p in passages]
    owner = np.repeat(np.arange(len(passages)), [len(p.sentences) for p in passages])
    return np.asarray(index.vectors), [titles, [p.source for p in passages]], np.asarray(index.sentence_vectors), owner


def neighbour_figures(indexes: dict[str, Path]) -> dict[str, Any]:
    """Per real corpus: its passages' 1st- and 10th-neighbour cosines beside those of a synthetic
    set of the same size drawn from the model fitted on it."""
    from .synthetic import fit, neighbour_cosines, sample, summary

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


def synthetic_index(root: Path, n: int, model_file: Path, sentences: list[str], onnx: Path | None, seed: int = 0) -> float:
    """Write a whole index of `n` synthetic passages (three real sentences each, grouped into
    articles as the vector model groups them) with the same code as a build; returns seconds."""
    from .abstention import default_model
    from .embedding import resolve_model
    from .store import FORMAT_VERSION, dense_kind, write_index
    from .synthetic import VectorModel, sample, sentences_around
    from .types import ChunkingConfig, Manifest, Passage, SourceRecord

    data = np.load(model_file, allow_pickle=False)
    levels = int(data["levels"])
    model = VectorModel(mean=data["mean"], factors=tuple(data[f"factor{i}"] for i in range(levels + 1)),
                        children=tuple(data[f"children{i}"] for i in range(levels + 1)), sentence_sd=float(data["sentence_sd"]),
                        spreads=tuple(data[f"spread{i}"] for i in range(levels + 1)), passage_scales=data["passage_scales"])
    rng = np.random.default_rng(seed)
    vectors, article = sample(model, n, rng)
    passages: list[Passage] = []
    texts: dict[str, str] = {}
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], article, [-1]]))).tolist()
    row = 0
    picks = rng.integers(0, len(sentences), (n, 3))
    for a in range(len(bounds) - 1):
        source, title = f"article-{a:07d}.txt", f"Synthetic article {a}"
        parts, cursor = [], 0
        for i in range(bounds[a], bounds[a + 1]):
            spans, words = [], []
            start = cursor
            for j in picks[i]:
                spans.append((cursor, cursor + len(sentences[j])))
                words.append(sentences[j])
                cursor += len(sentences[j]) + 1
            text = " ".join(words)
            passages.append(Passage(source=source, start=start, end=start + len(text), text=text, context=title,
                                    sentences=tuple(spans), id=i, sentence_row=row))
            row += 3
            parts.append(text)
            cursor = start + len(text) + 1
        texts[source] = "\n".join(parts)
    sentence_vectors = sentences_around(model, vectors, [3] * n, rng)
    manifest = Manifest(
        format_version=FORMAT_VERSION, model=resolve_model(None)[0], dimension=vectors.shape[1], max_seq_length=256,
        chunking=ChunkingConfig(), sources={s: SourceRecord(sha256="0" * 64, title=s, passages=0) for s in texts},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), build_seconds=0.0, versions={}, passages=n, sentences=3 * n,
        next_id=n, faiss_index=dense_kind(n), abstention=default_model(resolve_model(None)[0]),
        precision=json.loads((onnx / "config.json").read_text())["precision"] if onnx else "fp32",
        extra={"from_files": False, "synthetic": True},
        onnx=json.loads((onnx / "config.json").read_text()) if onnx else None,
    )
    t = time.perf_counter()
    write_index(root, manifest, passages, vectors, sentence_vectors, texts, None, onnx)
    return time.perf_counter() - t


def scale_write(n: int, model_file: Path, sentences_file: Path, root: Path, onnx: Path | None) -> dict[str, Any]:
    """Child process 1 of a size: write the whole index."""
    return {"write_s": synthetic_index(root, n, model_file, json.loads(sentences_file.read_text()), onnx)}


def scale_measure(root: Path, questions_file: Path) -> dict[str, Any]:
    """Child process 2 of a size: open the index as `rag ask` does (its memory measured from a
    process that has done nothing else), end-to-end answer() latency and the memory the
    searcher then holds, and last (it reads every vector) recall@10 against exact search."""
    from .onnx_encoder import question_encoder
    from .retrieval import top_rows
    from .search import CANDIDATES, Searcher
    from .store import open_index

    questions = json.loads(questions_file.read_text())
    before = rss_parts()
    index = open_index(root)
    encoder = question_encoder(index.path, index.manifest.model)
    searcher = Searcher(index, encoder)
    opened = rss_parts()
    vectors = encoder.encode_queries(questions)
    answer_ms, dense_ms, found = [], [], []
    for i, q in enumerate(questions):  # warm: each question's pages read once
        searcher.answer(q, vectors[i], 5)
    for i, q in enumerate(questions):
        t = time.perf_counter()
        searcher.answer(q, vectors[i], 5)
        answer_ms.append((time.perf_counter() - t) * 1000)
    after = rss_parts()
    for i in range(len(questions)):
        t = time.perf_counter()
        pool = index.dense.search(vectors[i], CANDIDATES)  # as the search takes them, then rescores exactly
        rows = index.rows(pool)
        got = index.ids[rows[top_rows(np.asarray(index.vectors[rows] @ vectors[i]), 10)]]
        dense_ms.append((time.perf_counter() - t) * 1000)
        exact = index.ids[top_rows(np.asarray(index.vectors @ vectors[i]), 10)]
        found.append(len(set(exact.tolist()) & set(got.tolist())) / 10)
    return {
        "n": len(index.passages),
        "index": index.manifest.faiss_index,
        "questions": len(questions),
        "recall@10": float(np.mean(found)),
        "dense_p50_ms": pct(dense_ms, 50),
        "answer_ms": {"p50": pct(answer_ms, 50), "p99": pct(answer_ms, 99)},
        "opened_mb": opened["rss_mb"] - before["rss_mb"],
        "searcher_rss_mb": after["rss_mb"] - before["rss_mb"],
        "searcher_anon_mb": after["anon_mb"] - before["anon_mb"],
        "searcher_file_mb": after["file_mb"] - before["file_mb"],
        "rss_per_million_mb": (after["rss_mb"] - before["rss_mb"]) / len(index.passages) * 1_000_000,
        "anon_per_million_mb": (after["anon_mb"] - before["anon_mb"]) / len(index.passages) * 1_000_000,
        "disk_mb": sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20,
    }


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Milvus Lite's engine is a child)."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        total += peak_rss_mb(current) or 0.0
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return total


def store_measure(sources: Path, store: str, questions_file: Path) -> dict[str, Any]:
    """Child process for one store: build the corpus into it (timed), open it as `rag ask`
    does, then warm ask() latency (encode included) and the memory of this process and its
    engine. `store` is a folder path or a milvus: spec."""
    from .locations import build_at, encoder_for_build, location, open_searcher
    from .sources import load_documents
    from .types import ChunkingConfig

    where = location(store) if not store.startswith("milvus:") else location("index", store, "rag")
    docs = load_documents(sources)
    encoder = encoder_for_build(where, None, None)
    started = time.perf_counter()
    report = build_at(where, sources, encoder, docs, ChunkingConfig(), from_files=False)
    build_s = time.perf_counter() - started
    searcher = open_searcher(where)
    questions = json.loads(questions_file.read_text())
    for q in questions:  # warm
        searcher.ask(q, 5)
    millis = []
    for q in questions:
        t = time.perf_counter()
        searcher.ask(q, 5)
        millis.append((time.perf_counter() - t) * 1000)
    return {"passages": report.passages, "build_s": build_s, "passages_per_s": report.passages / build_s,
            "ask_ms": {"p50": pct(millis, 50), "p99": pct(millis, 99)}, "rss_mb": tree_rss_mb(os.getpid())}


def store_figures(name: str, sources: Path, questions: list[str], work: Path, log: Any) -> dict[str, Any]:
    """The folder store and the Milvus store (Milvus Lite) on the same corpus, alternated in
    fresh processes (with the machine's kept model copy, so neither exports)."""
    questions_file = work / f"{name}-store-questions.json"
    questions_file.write_text(json.dumps(questions[:200]))
    figures: dict[str, Any] = {"corpus": name}
    for kind in ("folder", "milvus-lite", "folder", "milvus-lite"):
        target = str(work / f"{name}-{kind}") if kind == "folder" else f"milvus:{work / f'{name}-{kind}.db'}"
        shutil.rmtree(work / f"{name}-{kind}", ignore_errors=True)
        log(f"{name}: {kind} store: build and warm queries")
        code = ("import json, sys; from pathlib import Path; from rag.bench import store_measure; "
                "print(json.dumps(store_measure(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))")
        _, _, out = run_measured([sys.executable, "-c", code, str(sources), target, str(questions_file)], ENV)
        figures.setdefault(kind, []).append(json.loads(out.strip().splitlines()[-1]))
        if kind != "folder":
            for leftover in work.glob(f"{name}-{kind}.db*"):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
    for kind in ("folder", "milvus-lite"):
        runs = figures[kind]
        figures[kind] = {"passages": runs[0]["passages"], "build_s": float(np.median([r["build_s"] for r in runs])),
                         "ask_p50_ms": float(np.median([r["ask_ms"]["p50"] for r in runs])),
                         "ask_p99_ms": float(np.median([r["ask_ms"]["p99"] for r in runs])),
                         "rss_mb": float(np.median([r["rss_mb"] for r in runs]))}
    figures["milvus_over_folder"] = {k: figures["milvus-lite"][k] / figures["folder"][k]
                                     for k in ("build_s", "ask_p50_ms", "rss_mb")}
    return figures


def save_model(model: Any, path: Path) -> None:
    """A fitted VectorModel as one .npz of plain arrays (no pickle), for the scale workers."""
    arrays = {"mean": model.mean, "levels": np.array(len(model.factors) - 1), "sentence_sd": np.array(model.sentence_sd),
              "passage_scales": model.passage_scales}
    for i, (f, c, s) in enumerate(zip(model.factors, model.children, model.spreads)):
        arrays[f"factor{i}"], arrays[f"children{i}"], arrays[f"spread{i}"] = f, c, s
    np.savez(path, **arrays)


def scale_figures(sizes: Sequence[int], fit_index: Path, questions: list[str], onnx: Path | None, log: Any) -> list[dict[str, Any]]:
    """Each size in a child process (its memory its own), from the model fitted on `fit_index`."""
    import blingfire

    from .store import open_index
    from .synthetic import fit

    vectors, levels, sentences, owner = corpus_levels(fit_index)
    model = fit(vectors, levels, sentences, owner)
    texts = open_index(fit_index).texts
    real_sentences = [s for t in texts.values() for s in blingfire.text_to_sentences(t).split("\n") if 20 < len(s) < 400]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_file, questions_file, sentences_file = Path(tmp) / "model.npz", Path(tmp) / "questions.json", Path(tmp) / "sentences.json"
        save_model(model, model_file)
        questions_file.write_text(json.dumps(questions))
        sentences_file.write_text(json.dumps(real_sentences))
        for n in sizes:
            log(f"scale: {n:,} synthetic passages: writing the index")
            root = Path(tmp) / f"index-{n}"
            onnx_arg = f"Path({str(onnx)!r})" if onnx else "None"
            code = ("import json; from pathlib import Path; from rag.bench import scale_write; "
                    f"print(json.dumps(scale_write({n}, Path({str(model_file)!r}), Path({str(sentences_file)!r}), Path({str(root)!r}), {onnx_arg})))")
            _, write_peak, out = run_measured([sys.executable, "-c", code], ENV)
            result = json.loads(out.strip().splitlines()[-1])
            log(f"scale: {n:,} synthetic passages: opening it and asking")
            code = ("import json; from pathlib import Path; from rag.bench import scale_measure; "
                    f"print(json.dumps(scale_measure(Path({str(root)!r}), Path({str(questions_file)!r}))))")
            _, peak, out = run_measured([sys.executable, "-c", code], ENV)
            result.update(json.loads(out.strip().splitlines()[-1]))
            result["write_peak_rss_mb"], result["peak_rss_mb"] = write_peak, peak
            shutil.rmtree(root, ignore_errors=True)
            results.append(result)
    return results


SCALE_QUESTIONS = slice(1000, 1300)  # SQuAD questions the scale figures use: the approximate
# index's settings were chosen on the first 200 (docs/speed.md, "Scale"), so these are held out


def squad_folder(squad: Path, into: Path) -> list[str]:
    """One titled file per SQuAD paragraph, as a user's folder of articles would be; returns
    its questions."""
    into.mkdir(parents=True, exist_ok=True)
    for line in open(squad / "corpus.jsonl", encoding="utf-8"):
        r = json.loads(line)
        (into / f"{r['_id']}.txt").write_text(f"= {r.get('title', '')} =\n\n{r['text']}\n", "utf-8")
    return [json.loads(line)["text"] for line in open(squad / "queries.jsonl", encoding="utf-8")]


def large_folder(squad: Path, into: Path, passages: int, per_file: float, seed: int = 0) -> int:
    """A folder of real text about `passages` passages long: the sentences of SQuAD's
    paragraphs drawn at random into paragraphs as long as the real ones, one titled file per
    paragraph (`per_file`: passages a real paragraph gives). Paragraphs drawn alike (possible
    for short ones) are redrawn, so that no passage reuses another's vector. Returns the
    number of files."""
    import blingfire

    paragraphs = [blingfire.text_to_sentences(json.loads(line)["text"]).split("\n")
                  for line in open(squad / "corpus.jsonl", encoding="utf-8")]
    pool = [s for p in paragraphs for s in p if s.strip()]
    lengths = [len(p) for p in paragraphs]
    rng = np.random.default_rng(seed)
    files = int(np.ceil(passages / per_file))
    into.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for i in range(files):
        text = ""
        while not text or text in seen:
            picks = rng.integers(0, len(pool), lengths[int(rng.integers(0, len(lengths)))])
            text = " ".join(pool[j] for j in picks)
        seen.add(text)
        (into / f"p{i:06d}.txt").write_text(f"= Paragraph {i} =\n\n{text}\n", "utf-8")
    return files


def large_figures(squad: Path, work: Path, passages: int, per_file: float, log: Any) -> dict[str, Any]:
    """`rag index` (the default precision) of a real-text corpus of about `passages` passages,
    as a fresh process: seconds, passages per second, peak memory."""
    from .store import read_manifest

    folder, index = work / "large-src", work / "large-int8"
    files = large_folder(squad, folder, passages, per_file)
    log(f"large corpus: rag index of {files:,} files (about {passages:,} passages)")
    seconds, peak = rag_index(folder, index, "int8")
    made = read_manifest(index).passages
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    return {"files": files, "passages": made, "seconds": seconds, "passages_per_s": made / seconds, "peak_rss_mb": peak}


def compile_project() -> None:
    """Compile the project's modules, as `scripts/setup.sh` does, so that the cold starts are
    measured as a user's set-up checkout runs them (not after an edit left a stale cache)."""
    import compileall

    compileall.compile_dir(ROOT / "rag", quiet=1)


def run_bench(squad: Path | None, squad2: Path | None, sizes: Sequence[int], rounds: int, log: Any,
              side_note: bool = True, stores: bool = True, large: int = 0) -> dict[str, Any]:
    from .evaluation import load_questions
    from .store import read_manifest

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
            from .store import current_generation
            from .onnx_encoder import ONNX_DIR

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
