"""Stage 4: the index folder round-trips, FAISS agrees with numpy, nothing is pickled."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.layout import CURRENT, FORMAT_VERSION, current_generation, read_manifest
from rag.index.reading import open_index
from rag.index.writing import write_index


def test_round_trip(small_sources: Path, tmp_path: Path, fake_encoder):
    report = build_index(small_sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    m = index.manifest
    assert m.format_version == FORMAT_VERSION and m.model == "fake-hash" and m.dimension == 64
    assert m.chunking.max_tokens == 96 and m.passages == report.passages == len(index.passages)
    assert set(m.sources) == {"volcano.txt", "bakery.md", "notes/river.txt"}
    for name, record in m.sources.items():
        import hashlib

        assert record.sha256 == hashlib.sha256((small_sources / name).read_bytes()).hexdigest()
    assert {"faiss-cpu", "bm25s", "numpy", "rag"} <= set(m.versions)
    assert m.built_at and m.build_seconds >= 0
    # passages and vectors come back exactly as built
    texts = {name: (small_sources / name).read_text("utf-8") for name in m.sources}
    for p in index.passages:
        assert texts[p.source][p.start : p.end] == p.text
    again = fake_encoder.encode_queries([p.embed_text for p in index.passages])
    np.testing.assert_allclose(np.asarray(index.vectors), again, atol=1e-6)
    assert list(index.ids) == sorted(p.id for p in index.passages)
    assert len(index.sentence_vectors) == sum(len(p.sentences) for p in index.passages)
    # the manifest on disk is plain JSON and parses back to the same object
    data = json.loads((index.path / "manifest.json").read_text())
    assert read_manifest(tmp_path / "index") == m and data["model"] == "fake-hash"


def test_no_pickle_anywhere(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    gen = current_generation(tmp_path / "index")
    arrays = list(gen.rglob("*.npy"))
    assert len(arrays) >= 5
    for path in arrays:
        np.load(path, allow_pickle=False)  # raises if an object array was stored
    for path in gen.rglob("*"):
        if path.is_file():
            assert b"\x80\x04\x95" not in path.read_bytes()[:64]  # pickle protocol 4 header


def test_faiss_equals_brute_force(tmp_path: Path, fake_encoder):
    rng = np.random.default_rng(0)
    sources = tmp_path / "s"
    sources.mkdir()
    vocabulary = [f"w{i}" for i in range(200)]
    for d in range(30):
        (sources / f"d{d}.txt").write_text(
            " ".join(". ".join(" ".join(rng.choice(vocabulary, 8)) for _ in range(4)) + "." for _ in range(3))
        )
    build_index(sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    queries = fake_encoder.encode_queries([" ".join(rng.choice(vocabulary, 5)) for _ in range(20)])
    scores, ids = index.dense.faiss().search(queries, 10)
    brute = queries @ np.asarray(index.vectors).T
    for q in range(len(queries)):
        expected = np.sort(brute[q])[::-1][:10]
        np.testing.assert_allclose(scores[q], expected, atol=1e-5)
        np.testing.assert_allclose(brute[q][index.rows(ids[q])], scores[q], atol=1e-5)


def test_rebuild_switches_current_and_keeps_ids_growing(small_sources: Path, tmp_path: Path, fake_encoder):
    root = tmp_path / "index"
    build_index(small_sources, root, fake_encoder)
    first = open_index(root)
    report = build_index(small_sources, root, fake_encoder, full=True)
    second = open_index(root)
    assert report.full_reason == "--full was given"
    assert first.path != second.path
    assert (root / CURRENT).read_text().strip() == second.path.name
    assert min(second.ids) >= first.manifest.next_id  # the counter never goes back
    assert not list(root.glob(".tmp-*"))
    report = build_index(small_sources, root, fake_encoder)  # nothing changed
    third = open_index(root)
    assert report.full_reason is None and report.embedded == 0 and report.unchanged == 3
    assert third.ids.tolist() == second.ids.tolist()
    np.testing.assert_array_equal(np.asarray(third.vectors), np.asarray(second.vectors))


def test_missing_index_says_to_build(tmp_path: Path):
    with pytest.raises(RagError, match="no index in .* rag index"):
        open_index(tmp_path / "nothing")


def test_other_format_versions(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    path = current_generation(tmp_path / "index") / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": 999}))
    with pytest.raises(RagError, match="newer version of rag .*format 999.*rag index --full"):
        open_index(tmp_path / "index")
    with pytest.raises(RagError, match="newer version"):  # never replaced without --full
        build_index(small_sources, tmp_path / "index", fake_encoder)
    path.write_text(json.dumps({**data, "format_version": 2}))
    with pytest.raises(RagError, match="has format 2"):
        open_index(tmp_path / "index")


def test_damaged_index_says_to_rebuild(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    (current_generation(tmp_path / "index") / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(RagError, match=r"damaged \(.*\); rebuild it with: rag index --full"):
        open_index(tmp_path / "index")


def test_write_refuses_mismatched_vectors(tmp_path: Path, small_sources: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    with pytest.raises(ValueError, match="vectors"):
        write_index(tmp_path / "other", index.manifest, index.passages, np.asarray(index.vectors)[:1], index.sentence_vectors, {})
    dup = [replace(p, id=0) for p in index.passages]
    with pytest.raises(ValueError, match="unique"):
        write_index(tmp_path / "other", index.manifest, dup, np.asarray(index.vectors), index.sentence_vectors, {})


def test_quick_successive_builds_keep_the_current_and_the_previous_generation(small_sources: Path, tmp_path: Path, fake_encoder):
    from rag.index.layout import current_generation

    root, kept = tmp_path / "index", []
    for i in range(6):  # several builds within one second
        (small_sources / "counter.txt").write_text(f"Build number {i} of the day.")
        build_index(small_sources, root, fake_encoder)
        kept.append(current_generation(root))
        assert sorted(p.name for p in root.glob("gen-*")) == sorted({g.name for g in kept[-2:]})


def test_numpy_exact_search_equals_faiss_and_lexical_equals_bm25s(tmp_path: Path, fake_encoder):
    import bm25s

    from rag.index.lexical import new_bm25_tokenizer

    texts = {f"d{i}.txt": " ".join(f"word{(i * 7 + j) % 53} item{j % 11}." for j in range(30)) for i in range(40)}
    sources = tmp_path / "s"
    sources.mkdir()
    for name, text in texts.items():
        (sources / name).write_text(text)
    build_index(sources, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    assert index.dense.exact
    rng = np.random.default_rng(3)
    for q in rng.normal(size=(20, fake_encoder.dimension)).astype(np.float32):
        q /= np.linalg.norm(q)
        ours = index.dense.search(q, 10)
        _, theirs = index.dense.faiss().search(q.reshape(1, -1), 10)
        brute = np.asarray(index.vectors) @ q
        np.testing.assert_allclose(np.sort(brute[index.rows(ours)])[::-1], np.sort(brute[index.rows(theirs[0])])[::-1], atol=1e-6)
    retriever = bm25s.BM25.load(str(index.path / "bm25"))
    tokenizer = new_bm25_tokenizer()
    tokenizer.load_vocab(str(index.path / "bm25"))
    assert tokenizer.get_vocab_dict() == index.lexical.vocab
    for terms in ([1], [3, 9, 20], list(range(0, len(index.lexical.vocab), 7))):
        np.testing.assert_allclose(index.lexical.scores(np.array(terms))[0], retriever.get_scores_from_ids(terms), rtol=1e-6)
