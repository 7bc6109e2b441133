"""`rag bench`'s scale runs: whole synthetic indexes written and opened by the real code.

Vectors come from the model fitted on SQuAD (rag.bench.synthetic), texts from real sentences;
recall@10 of the dense index against exact search, end-to-end latency, and memory, each size
in its own process; and the app's start on a large folder of real files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.bench.measure import (
    ENV,
    corpus_levels,
    pct,
    peak_rss_mb,
    rag_index,
    rss_parts,
    run_measured,
    save_model,
)


def synthetic_index(root: Path, n: int, model_file: Path, sentences: list[str], onnx: Path | None, seed: int = 0) -> float:
    """Write a whole index of `n` synthetic passages (three real sentences each, grouped into
    articles as the vector model groups them) with the same code as a build; returns seconds."""
    from rag.bench.synthetic import VectorModel, sample, sentences_around
    from rag.encoding import resolve_model
    from rag.index import FORMAT_VERSION, dense_kind, write_index
    from rag.models import default_model
    from rag.types import ChunkingConfig, Manifest, Passage, SourceRecord

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
    from rag.answer import CANDIDATES, Searcher
    from rag.encoding import question_encoder
    from rag.index import open_index, top_rows

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
    from rag.locations import build_at, encoder_for_build, location, open_searcher
    from rag.sources import load_documents
    from rag.types import ChunkingConfig

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
        code = ("import json, sys; from pathlib import Path; from rag.bench.scale import store_measure; "
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


def scale_figures(sizes: Sequence[int], fit_index: Path, questions: list[str], onnx: Path | None, log: Any) -> list[dict[str, Any]]:
    """Each size in a child process (its memory its own), from the model fitted on `fit_index`."""
    import blingfire

    from rag.bench.synthetic import fit
    from rag.index import open_index

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
            code = ("import json; from pathlib import Path; from rag.bench.scale import scale_write; "
                    f"print(json.dumps(scale_write({n}, Path({str(model_file)!r}), Path({str(sentences_file)!r}), Path({str(root)!r}), {onnx_arg})))")
            _, write_peak, out = run_measured([sys.executable, "-c", code], ENV)
            result = json.loads(out.strip().splitlines()[-1])
            log(f"scale: {n:,} synthetic passages: opening it and asking")
            code = ("import json; from pathlib import Path; from rag.bench.scale import scale_measure; "
                    f"print(json.dumps(scale_measure(Path({str(root)!r}), Path({str(questions_file)!r}))))")
            _, peak, out = run_measured([sys.executable, "-c", code], ENV)
            result.update(json.loads(out.strip().splitlines()[-1]))
            result["write_peak_rss_mb"], result["peak_rss_mb"] = write_peak, peak
            shutil.rmtree(root, ignore_errors=True)
            results.append(result)
    return results


SCALE_QUESTIONS = slice(1000, 1300)  # SQuAD questions the scale figures use: the approximate


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
    from rag.index import read_manifest

    folder, index = work / "large-src", work / "large-int8"
    files = large_folder(squad, folder, passages, per_file)
    log(f"large corpus: rag index of {files:,} files (about {passages:,} passages)")
    seconds, peak = rag_index(folder, index, "int8")
    made = read_manifest(index).passages
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    return {"files": files, "passages": made, "seconds": seconds, "passages_per_s": made / seconds, "peak_rss_mb": peak}
