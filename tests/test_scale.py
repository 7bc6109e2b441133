"""The FAISS index is chosen by corpus size, recorded, and stays correct through updates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import rag.store as store
from rag.bench import pct, scale_worker
from rag.build import build_index
from rag.store import build_dense, dense_kind, open_index


def clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, d))
    v = centers[rng.integers(0, 50, n)] + rng.normal(0, 0.2, (n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_kind_by_size():
    assert dense_kind(1000) == "IDMap2,Flat"
    assert dense_kind(store.FLAT_MAX) == "IDMap2,Flat"
    assert dense_kind(1_000_000).startswith("IVF4000,Flat,nprobe=")


def test_ivf_above_the_threshold_finds_what_exact_search_finds(monkeypatch):
    monkeypatch.setattr(store, "FLAT_MAX", 1000)
    vectors = clustered(5000)
    ids = np.arange(100, 5100, dtype=np.int64)
    index = build_dense(vectors, ids)
    assert type(index).__name__ == "IndexIVFFlat" and index.nprobe == store.IVF_NPROBE
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
    assert index.manifest.faiss_index.startswith("IVF") and type(index.dense).__name__ == "IndexIVFFlat"
    assert index.dense.ntotal == len(index.passages)


def test_percentile():
    assert pct([1, 2, 3, 4], 50) == 2 and pct([5], 99) == 5


def test_scale_worker_small(tmp_path: Path):
    rng = np.random.default_rng(0)
    centers = clustered(200, d=32)
    np.save(tmp_path / "c.npy", centers)
    np.save(tmp_path / "q.npy", clustered(20, d=32, seed=3))
    (tmp_path / "s.json").write_text(json.dumps([f"word{i} word{i + 1} topic{rng.integers(50)}" for i in range(300)]))
    out = scale_worker(3000, tmp_path / "c.npy", tmp_path / "q.npy", tmp_path / "s.json")
    assert out["index"] == "IDMap2,Flat" and out["recall@10"] == 1.0
    assert {"n", "index", "recall@10", "p50_ms", "rss_mb", "bm25_p50_ms"} <= set(out)


@pytest.mark.model
def test_bench_cli_json(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "rag", "bench", "--json", "--squad", str(tmp_path / "none"), "--sizes", "5000"],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    seeds = report["corpora"][0]
    assert seeds["corpus"] == "seeds" and seeds["build_over_floor"] > 0 and seeds["query_over_encode"] > 0
    assert seeds["query_encoder"] == "OnnxEncoder" and seeds["onnx_encode_s"] > 0 and seeds["query_over_served_encode"] > 0
    assert seeds["ask_cold_s"] > 0 and seeds["app_ready_s"] > 0 and seeds["app_rss_mb"] > 0
    assert [s["n"] for s in report["scale"]] == [5000]
    assert set(report["scale"][0]) >= {"n", "index", "recall@10", "p50_ms", "rss_mb"}
