"""The FAISS index is chosen by corpus size, recorded, and stays correct through updates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import rag.index.dense as store
from rag.bench.measure import pct
from rag.index.build import build_index
from rag.index.dense import build_dense, dense_kind
from rag.index.reading import open_index


def clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, d))
    v = centers[rng.integers(0, 50, n)] + rng.normal(0, 0.2, (n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_kind_by_size():
    assert dense_kind(1000) == "IDMap2,Flat"
    assert dense_kind(store.FLAT_MAX) == "IDMap2,Flat"
    assert dense_kind(1_000_000) == "IVF4000,SQ8,nprobe=800"


def test_ivf_above_the_threshold_finds_what_exact_search_finds(monkeypatch):
    monkeypatch.setattr(store, "FLAT_MAX", 1000)
    vectors = clustered(5000)
    ids = np.arange(100, 5100, dtype=np.int64)
    index = build_dense(vectors, ids)
    assert type(index).__name__ == "IndexIVFScalarQuantizer" and index.nprobe == store.ivf_nprobe(store.ivf_lists(len(vectors)))
    queries = clustered(50, seed=1)
    _, got = index.search(queries, 10)
    truth = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), truth.tolist())])
    assert recall >= 0.95
    index.remove_ids(ids[:10])  # incremental updates work on it too
    assert index.ntotal == 4990


def test_build_records_the_index_kind_and_switches_kind(monkeypatch, tmp_path: Path, fake_encoder):
    sources = tmp_path / "s"
    sources.mkdir()
    for i in range(12):
        (sources / f"d{i}.txt").write_text(" ".join(f"Sentence {j} about topic {i} and item {j * i}." for j in range(40)))
    build_index(sources, tmp_path / "index", fake_encoder)
    assert open_index(tmp_path / "index").manifest.faiss_index == "IDMap2,Flat"
    monkeypatch.setattr(store, "FLAT_MAX", 20)
    (sources / "d0.txt").write_text("A changed article. It is short now.")
    build_index(sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    assert index.manifest.faiss_index.startswith("IVF") and type(index.dense.faiss()).__name__ == "IndexIVFScalarQuantizer"
    assert index.dense.faiss().ntotal == len(index.passages)


def test_a_searcher_on_an_approximate_index_searches_one_question_on_every_core(monkeypatch, tmp_path: Path, fake_encoder):
    """The Searcher switches FAISS to parallel lists for one question; the ids found are the
    same as FAISS's default gives, in the same order."""
    from rag.answer.searcher import Searcher

    monkeypatch.setattr(store, "FLAT_MAX", 20)
    sources = tmp_path / "s"
    sources.mkdir()
    for i in range(12):
        (sources / f"d{i}.txt").write_text(" ".join(f"Sentence {j} about topic {i} and item {j * i}." for j in range(40)))
    build_index(sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    faiss_index = index.dense.faiss()
    queries = fake_encoder.encode_queries([f"item {i} of topic {i % 7}" for i in range(20)])
    default = [index.dense.search(q, 30).tolist() for q in queries]
    Searcher(index, fake_encoder)
    assert faiss_index.parallel_mode == 1
    assert [index.dense.search(q, 30).tolist() for q in queries] == default


def test_percentile():
    assert pct([1, 2, 3, 4], 50) == 2 and pct([5], 99) == 5


def test_synthetic_vectors_keep_the_neighbour_structure_they_were_fitted_on():
    """Fitted on hierarchical data, new vectors (not copies) with the same neighbour cosines."""
    from rag.bench.synthetic import fit, neighbour_cosines, sample

    rng = np.random.default_rng(4)
    d = 48
    articles = rng.normal(size=(30, d))
    docs = np.repeat(articles, 5, axis=0) + rng.normal(0, 0.5, (150, d))
    rows = np.repeat(docs, 4, axis=0) + rng.normal(0, 0.3, (600, d))
    real = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    model = fit(real, [[i // 20 for i in range(600)], [i // 4 for i in range(600)]])
    synthetic, article = sample(model, 600, np.random.default_rng(5))
    assert synthetic.shape == real.shape and len(set(article.tolist())) > 10
    assert (synthetic @ real.T).max() < 0.999  # no copies
    for got, want in zip(neighbour_cosines(synthetic), neighbour_cosines(real)):
        assert abs(float(np.median(got)) - float(np.median(want))) < 0.07


def test_synthetic_index_is_whole_and_searchable(tmp_path: Path):
    """The scale benchmark's index is written by the build's own code and opened by rag ask's:
    exact citations, recall against brute force, the memory figures."""
    from rag.bench.measure import save_model
    from rag.bench.scale import synthetic_index
    from rag.bench.synthetic import fit
    from rag.index.reading import open_index

    rng = np.random.default_rng(0)
    real = clustered(400, d=32)
    model = fit(real, [[i // 40 for i in range(400)], [i // 4 for i in range(400)]], real[:10], list(range(10)))
    save_model(model, tmp_path / "m.npz")
    sentences = [f"word{i} word{i + 1} topic{rng.integers(50)} goes on here." for i in range(300)]
    synthetic_index(tmp_path / "index", 3000, tmp_path / "m.npz", sentences, None)
    index = open_index(tmp_path / "index")
    assert len(index.passages) == 3000 and index.sentence_vectors.shape == (9000, 32)
    for p in list(index.passages)[::97]:
        assert index.texts[p.source][p.start : p.end] == p.text
        assert all(index.texts[p.source][a:b] in sentences for a, b in p.sentences)
    assert np.allclose(np.linalg.norm(np.asarray(index.vectors), axis=1), 1, atol=1e-5)


@pytest.mark.model
def test_bench_cli_json(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "rag", "bench", "--json", "--squad", str(tmp_path / "none"), "--squad2", str(tmp_path / "none"),
         "--sizes", "5000"],
        capture_output=True, text=True, timeout=900,
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    seeds = report["corpora"][0]
    assert seeds["corpus"] == "seeds" and seeds["build"]["int8_s"] > 0 and seeds["build"]["fp32_s"] > 0
    assert seeds["build"]["int8_over_fp32"] > 0 and seeds["query_over_encode"] > 0
    assert seeds["query_encoder"].startswith("OnnxEncoder") and seeds["encode_question_ms"]["p50"] > 0
    assert seeds["ask_cold_s"] > 0 and seeds["app_ready_s"] > 0 and seeds["app_rss_mb"] > 0
    assert [r["corpus"] for r in report["neighbours"]["corpora"]] == ["seeds"]
    assert [s["n"] for s in report["scale"]] == [5000] and report["scale_questions"] == "seeds dev questions"
    stores = report["stores"][0]
    assert stores["folder"]["passages"] == stores["milvus-lite"]["passages"] == seeds["passages"]
    assert stores["milvus-lite"]["ask_p50_ms"] > 0 and stores["milvus_over_folder"]["build_s"] > 0
    assert set(report["scale"][0]) >= {"n", "index", "recall@10", "answer_ms", "searcher_rss_mb", "rss_per_million_mb"}


def test_large_corpus_is_real_sentences_in_new_paragraphs(tmp_path: Path):
    """`rag bench --large`: files of real sentences, paragraphs as long as the real ones, none alike."""
    from rag.bench.scale import large_folder

    squad = tmp_path / "squad"
    squad.mkdir()
    real = [" ".join(f"Sentence {p}.{s} about topic {p} is here." for s in range(2 + p % 4)) for p in range(30)]
    (squad / "corpus.jsonl").write_text("".join(json.dumps({"_id": str(i), "title": "t", "text": t}) + "\n" for i, t in enumerate(real)))
    files = large_folder(squad, tmp_path / "out", passages=400, per_file=2.5)
    texts = [p.read_text("utf-8") for p in sorted((tmp_path / "out").iterdir())]
    assert files == len(texts) == 160
    bodies = [t.split("\n\n", 1)[1].strip() for t in texts]
    assert len(set(bodies)) == len(bodies)
    pool = {s for t in real for s in t.replace(". ", ".\n").split("\n")}
    for body in bodies:
        sentences = body.replace(". ", ".\n").split("\n")
        assert set(sentences) <= pool and 2 <= len(sentences) <= 5


def test_bench_large_needs_squad(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "rag", "bench", "--squad", str(tmp_path / "none"), "--large", "1000"],
                            capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "--squad" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
