"""The ONNX copy of the model that encodes questions: equal to the model, reused, optional."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SMALL_CORPUS, write_corpus
from fakes import HashEncoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.encoding.export import ExportUnavailable, pooling_of
from rag.encoding.int8 import (
    CALIBRATION,
    INT8_ANY_TEXT_COSINE,
    INT8_MIN_COSINE,
    OUTLIER_RATIO,
    SMOOTH_ALPHA,
    smoothed,
    split_outliers,
)
from rag.encoding.recipes import DEFAULT_PRECISION, ONNX_DIR, RECIPES
from rag.index.build import build_index
from rag.index.layout import current_generation, read_manifest

MINILM_OUTLIERS = [1, 1, 2, 1, 0, 0]  # outlier channels per layer of all-MiniLM-L6-v2 (docs/speed.md, "int8")
QUESTIONS = [
    "Who claimed responsibility for the attacks in Bamako?",
    "When did the attack on the gendarmerie school happen?",
    "combien de morts ?",
    "x",
    "Which country hosted the 2024 Olympic Games? " * 40,  # past the model's window
]


@pytest.fixture(scope="module")
def fp32_index(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Path:
    root = tmp_path_factory.mktemp("fp32") / "index"
    build_index(ROOT / "seeds", root, real_encoder, precision="fp32")
    return root


def _copy(root: Path):
    from rag.encoding.onnx import open_onnx_encoder

    encoder = open_onnx_encoder(current_generation(root), read_manifest(root).model)
    assert encoder is not None
    return encoder


@pytest.fixture(scope="module")
def onnx_encoder(fp32_index: Path):
    """The fp32 copy: the model's vectors to float precision."""
    return _copy(fp32_index)


@pytest.fixture(scope="module")
def int8_encoder(seed_index: Path):
    """The default (int8) copy."""
    return _copy(seed_index)


@pytest.mark.model
def test_the_build_exports_a_verified_copy(seed_index: Path, fp32_index: Path):
    for root, precision in ((seed_index, DEFAULT_PRECISION), (fp32_index, "fp32")):
        manifest = read_manifest(root)
        folder = current_generation(root) / ONNX_DIR
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.onnx", "tokenizer.json"]
        assert manifest.onnx == json.loads((folder / "config.json").read_text())
        assert manifest.onnx["pooling"] == "mean" and manifest.onnx["dimension"] == manifest.dimension
        assert manifest.precision == manifest.onnx["precision"] == precision
    assert read_manifest(fp32_index).onnx["max_abs_diff"] < 1e-4
    int8 = read_manifest(seed_index).onnx
    assert int8["min_cosine"] >= INT8_MIN_COSINE
    assert int8["smoothing"] == {"alpha": SMOOTH_ALPHA, "layers": 6, "calibration_texts": len(CALIBRATION)}
    assert int8["outliers"] == {"ratio": OUTLIER_RATIO, "channels": MINILM_OUTLIERS, "calibration_texts": len(CALIBRATION)}
    assert (int8["recipe"], read_manifest(fp32_index).onnx["recipe"]) == (RECIPES["int8"], RECIPES["fp32"]) == (4, 1)
    # int8 runs one unpadded text at a time: token ids are its only input; fp32 takes padded batches
    assert int8["inputs"] == ["input_ids"]
    assert read_manifest(fp32_index).onnx["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert "smoothing" not in read_manifest(fp32_index).onnx and "outliers" not in read_manifest(fp32_index).onnx
    fp32_bytes = (current_generation(fp32_index) / ONNX_DIR / "model.onnx").stat().st_size
    assert (current_generation(seed_index) / ONNX_DIR / "model.onnx").stat().st_size < fp32_bytes / 3  # int8 weights


@pytest.mark.model
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=4))
def test_int8_vectors_are_within_the_stated_cosine(int8_encoder, real_encoder, texts: list[str]):
    got, expected = int8_encoder.encode_queries(texts), real_encoder.encode_queries(texts)
    assert got.dtype == np.float32 and (got * expected).sum(axis=1).min() >= INT8_ANY_TEXT_COSINE


@pytest.mark.model
def test_an_index_refuses_questions_encoded_at_the_other_precision(seed_index: Path, fp32_index: Path, onnx_encoder, int8_encoder):
    from rag.answer.searcher import Searcher
    from rag.errors import RagError
    from rag.index.reading import open_index

    with pytest.raises(RagError, match="int8 copy but the questions would be encoded at fp32"):
        Searcher(open_index(seed_index), onnx_encoder)
    with pytest.raises(RagError, match="fp32"):
        Searcher(open_index(fp32_index), int8_encoder)
    assert Searcher(open_index(seed_index), int8_encoder).ask("Who claimed the attack?").hits


@pytest.mark.model
def test_onnx_vectors_equal_the_model(onnx_encoder, real_encoder):
    expected = real_encoder.encode_queries(QUESTIONS)
    assert np.abs(onnx_encoder.encode_queries(QUESTIONS) - expected).max() < 1e-5  # one padded batch
    for question, row in zip(QUESTIONS, expected):
        assert np.abs(onnx_encoder.encode_queries([question])[0] - row).max() < 1e-5
    assert onnx_encoder.encode_queries([]).shape == (0, real_encoder.dimension)


@pytest.mark.model
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=4))
def test_onnx_vectors_equal_the_model_on_any_text(onnx_encoder, real_encoder, texts: list[str]):
    got, expected = onnx_encoder.encode_queries(texts), real_encoder.encode_queries(texts)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 1e-5


@pytest.mark.model
def test_answers_are_the_same_with_either_encoder(fp32_index: Path, onnx_encoder, real_encoder):
    from rag.answer.searcher import Searcher
    from rag.evaluation.questions import load_questions
    from rag.index.reading import open_index

    index = open_index(fp32_index)
    questions = [q.question for q in load_questions(ROOT / "eval" / "seeds" / "dev.jsonl")]
    fast, slow = Searcher(index, onnx_encoder).ask_many(questions, 5), Searcher(index, real_encoder).ask_many(questions, 5)
    for a, b in zip(fast, slow):
        assert a.answered == b.answered and abs(a.support - b.support) < 1e-5
        assert [(h.source, h.start, h.end, h.highlight) for h in a.hits] == [(h.source, h.start, h.end, h.highlight) for h in b.hits]


@pytest.mark.model
def test_rag_ask_answers_without_importing_torch(seed_index: Path):
    script = (
        "import sys, json; from rag.cli import main; "
        f"main(['ask', {QUESTIONS[0]!r}, '--index', {str(seed_index)!r}, '--json']); "
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    answer, imported = out.stdout.strip().splitlines()
    assert json.loads(answer)["answered"] is True
    assert json.loads(imported) == []


@pytest.mark.model
def test_a_model_the_copy_cannot_reproduce_keeps_the_torch_path(tmp_path: Path, real_encoder, monkeypatch):
    import rag.encoding.export
    from rag.locations import location, open_searcher

    monkeypatch.setattr(rag.encoding.export, "TOLERANCE", -1.0)  # no copy can pass
    monkeypatch.setenv("RAG_CACHE", "")  # and no kept copy stands in for the export
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    build_index(sources, tmp_path / "index", real_encoder)
    manifest = read_manifest(tmp_path / "index")
    assert manifest.onnx is None
    assert manifest.extra["onnx_unavailable"].startswith("the ONNX copy differs from the model by")
    assert not (current_generation(tmp_path / "index") / ONNX_DIR).exists()
    searcher = open_searcher(location(tmp_path / "index"))
    assert type(searcher.encoder).__name__ == "SentenceTransformerEncoder"
    assert searcher.ask("When did the volcano last erupt?").hits[0].source == "volcano.txt"


class _Module:
    def __init__(self, config: dict) -> None:
        self.config = config

    def get_config_dict(self) -> dict:
        return self.config


def _stack(*kinds: str, pooling: dict | None = None, prompts: dict | None = None):
    modules = [type(kind, (_Module,), {})(pooling if kind == "Pooling" else {}) for kind in kinds]

    class Model(list):
        pass

    model = Model(modules)
    model.prompts = prompts or {}
    model.default_prompt_name = None
    return model


def test_only_plain_transformer_pooling_models_are_exported():
    assert pooling_of(_stack("Transformer", "Pooling", "Normalize", pooling={"pooling_mode": "mean"})) == ("mean", True)
    assert pooling_of(_stack("Transformer", "Pooling", pooling={"pooling_mode": "cls"})) == ("cls", False)
    assert pooling_of(_stack("Transformer", "Pooling", pooling={"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})) == ("cls", False)
    with pytest.raises(ExportUnavailable, match="Dense"):
        pooling_of(_stack("Transformer", "Pooling", "Dense", pooling={"pooling_mode": "mean"}))
    with pytest.raises(ExportUnavailable, match="'max'"):
        pooling_of(_stack("Transformer", "Pooling", pooling={"pooling_mode": "max"}))
    with pytest.raises(ExportUnavailable, match="prompts"):
        pooling_of(_stack("Transformer", "Pooling", pooling={"pooling_mode": "mean"}, prompts={"query": "query: "}))


@pytest.mark.model
def test_passage_vectors_equal_the_model(onnx_encoder, real_encoder):
    texts = ["Gunmen attacked the school. Then they moved to the airport.", "One sentence only", "word " * 300]
    spans = [[(0, 27), (28, 59)], [(0, 17)], [(0, 4), (1490, 1494)]]  # the last span is past the window
    fast, slow = onnx_encoder.encode_passages(texts, spans), real_encoder.encode_passages(texts, spans)
    assert np.abs(fast[0] - slow[0]).max() < 1e-5
    for a, b, s in zip(fast[1], slow[1], spans):
        assert a.shape == (len(s), real_encoder.dimension) and np.abs(a - b).max() < 1e-5
    assert onnx_encoder.count_tokens(texts) == real_encoder.count_tokens(texts)


@pytest.mark.model
def test_updates_share_the_copy_and_a_full_rebuild_makes_a_new_one(small_sources: Path, tmp_path: Path, real_encoder, monkeypatch):
    monkeypatch.setenv("RAG_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "index"
    build_index(small_sources, root, real_encoder)
    first = current_generation(root) / ONNX_DIR / "model.onnx"
    (small_sources / "new.txt").write_text("A new article about the harbour.")
    build_index(small_sources, root, real_encoder)
    second = current_generation(root) / ONNX_DIR / "model.onnx"
    assert second != first and os.path.samefile(first, second)  # a hard link, not a new export
    build_index(small_sources, root, real_encoder, full=True)
    third = current_generation(root) / ONNX_DIR / "model.onnx"
    from rag.encoding.copies import cached_copy

    kept = cached_copy(real_encoder.name, DEFAULT_PRECISION)
    assert kept is not None and os.path.samefile(third, kept / "model.onnx")  # the machine's kept copy, linked
    monkeypatch.setenv("RAG_CACHE", "")
    build_index(small_sources, root, real_encoder, full=True)
    fourth = current_generation(root) / ONNX_DIR / "model.onnx"
    assert not os.path.samefile(third, fourth) and read_manifest(root).onnx is not None  # nothing kept: exported
    build_index(small_sources, root, HashEncoder(name="fake-other"))  # another model: no copy of the old one
    assert read_manifest(root).onnx is None
    assert not (current_generation(root) / ONNX_DIR).exists()
    assert read_manifest(root).extra["onnx_unavailable"] == "this encoder cannot be exported"
    assert [p.name for p in root.iterdir() if p.name.startswith(".tmp")] == []  # no scratch folder left


@pytest.mark.model
def test_rag_index_updates_with_the_copy_alone(small_sources: Path, tmp_path: Path):
    """An update loads the index's ONNX copy, not torch; its vectors match a full rebuild's."""
    from rag.index.reading import open_index

    index = tmp_path / "index"
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag", "index", "--sources", str(small_sources), "--index", str(index), "--quiet", *a], capture_output=True, text=True, cwd=ROOT, timeout=300)  # noqa: E731
    assert run().returncode == 0
    (small_sources / "new.txt").write_text("A ferry crossed the lake every morning. It carried cars.")
    probe = (
        "import sys; sys.argv = ['rag', 'index', '--sources', %r, '--index', %r, '--quiet']; "
        "from rag.cli import main; code = main(sys.argv[1:]); "
        "print('torch' in sys.modules); sys.exit(code)" % (str(small_sources), str(index))
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "1 added" in out.stdout and out.stdout.strip().endswith("False")
    updated = open_index(index)
    assert run("--full").returncode == 0
    rebuilt = open_index(index)
    by_text = {p.embed_text: rebuilt.vectors[i] for i, p in enumerate(rebuilt.passages)}
    for i, p in enumerate(updated.passages):
        assert np.abs(updated.vectors[i] - by_text[p.embed_text]).max() < 1e-5


@pytest.mark.model
def test_int8_vectors_do_not_depend_on_what_is_encoded_beside_them(int8_encoder):
    """Dynamic int8 scales are set per run: each text runs alone, so an update's vectors equal
    a full rebuild's and a question's vector is the same asked alone or in a batch."""
    short, long = "Who claimed the attack?", "The junta said the attackers were neutralised. " * 20
    alone = int8_encoder.encode_passages([short], [[(0, len(short))]])
    beside = int8_encoder.encode_passages([long, short, long], [[(0, 10)], [(0, len(short))], [(0, 10)]])
    assert np.array_equal(alone[0][0], beside[0][1]) and np.array_equal(alone[1][0], beside[1][1])
    assert np.array_equal(int8_encoder.encode_queries([short])[0], int8_encoder.encode_queries([long, short])[1])
    assert np.abs(int8_encoder.encode_queries([short])[0] - alone[0][0]).max() < 1e-5  # questions and passages alike
    with pytest.raises(ValueError, match="one text at a time"):  # a copy without a mask input never pads
        int8_encoder._run([short, long])


@pytest.mark.model
def test_question_threads_do_not_spin_through_the_search(seed_index: Path):
    """Every session's idle threads sleep after SPIN_US: spinning through the search that
    follows each question took the second core from it (docs/speed.md, "Queries")."""
    from rag.encoding.onnx import SPIN_KEY, SPIN_US

    encoder = _copy(seed_index)
    for session in [encoder._session, *encoder._workers]:
        assert session.get_session_options().get_session_config_entry(SPIN_KEY) == str(SPIN_US)
    assert 0 < SPIN_US <= 100


def _last_hidden(model, tokenizer, texts: list[str]) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        return [model(**tokenizer([t], truncation=True, max_length=256, return_tensors="pt")).last_hidden_state[0].numpy()
                for t in texts]


@pytest.fixture(scope="module")
def smoothed_model(real_encoder):
    model = real_encoder._model
    plain = model[0].auto_model
    inputs = list(model.tokenizer.model_input_names)
    before = plain.encoder.layer[0].attention.self.query.weight.detach().clone()
    copy, record = smoothed(plain, model.tokenizer, list(CALIBRATION), inputs, 256)
    assert copy is not plain and record == {"alpha": SMOOTH_ALPHA, "layers": 6, "calibration_texts": len(CALIBRATION)}
    for layer in copy.encoder.layer:  # one scaling per input, however many weights read it
        scales = [layer.attention.self.inverse, layer.intermediate.dense.inverse]
        assert all(float(s.max() / s.min()) > 3 for s in scales)  # channels really are rescaled, unevenly
    assert (plain.encoder.layer[0].attention.self.query.weight == before).all()  # the model itself is untouched
    return copy, model.tokenizer


@pytest.mark.model
def test_a_transformer_not_laid_out_as_bert_is_not_smoothed(real_encoder):
    import torch

    other = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert smoothed(other, real_encoder._model.tokenizer, ["a"], ["input_ids"], 256) == (other, None)


def _split(model, tokenizer):
    split, record = split_outliers(model, tokenizer, list(CALIBRATION), list(tokenizer.model_input_names), 256)
    assert record == {"ratio": OUTLIER_RATIO, "channels": MINILM_OUTLIERS, "calibration_texts": len(CALIBRATION)}
    return split, tokenizer


@pytest.fixture(scope="module")
def split_model(smoothed_model):
    """The smoothed model with its feed-forward outlier channels split off, as the int8 export makes it."""
    return _split(*smoothed_model)


@pytest.fixture(scope="module")
def plain_split_model(real_encoder):
    """The model itself (not smoothed) with its outlier channels split off."""
    return _split(real_encoder._model[0].auto_model, real_encoder._model.tokenizer)


@pytest.mark.model
def test_the_split_moves_exactly_the_outlier_channels(smoothed_model, split_model):
    model, split = smoothed_model[0], split_model[0]
    width = [layer.intermediate.dense.inner.out_features for layer in model.encoder.layer]
    for layer, n, before in zip(split.encoder.layer, MINILM_OUTLIERS, width):
        # the int8 path loses exactly the outlier channels, the fp32 side path has them all
        assert layer.intermediate.dense.inner.out_features == before - n
        if n:
            assert layer.output.outlier_up.out_features == n == layer.output.outlier_down.in_features
            assert layer.output.output.dense.in_features == before - n
        else:
            assert not hasattr(layer.output, "outlier_up")
    assert width == [1536] * 6 and split is not model  # the smoothed model itself is untouched


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=120, max_size=400), st.lists(st.integers(0, 119), max_size=5, unique=True),
       st.floats(20, 100))
def test_outliers_are_the_channels_far_above_their_layer(peaks: list[float], spikes: list[int], height: float):
    from rag.encoding.int8 import outlier_channels

    values = np.array(peaks, dtype=np.float32)
    values[spikes] = height  # at most 5 of >= 120 channels: the 99th percentile stays among the rest
    floor = OUTLIER_RATIO * float(np.quantile(values, 0.99))
    expected = sorted(spikes) if floor > 0 and height >= floor else []
    assert outlier_channels(values) == expected
    assert outlier_channels(values, most=1) == ([int(np.argmax(values))] if expected else [])
    assert outlier_channels(np.zeros(100, np.float32)) == []


@pytest.mark.model
@pytest.mark.parametrize("rewritten", ["smoothed_model", "split_model", "plain_split_model"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=3))
def test_the_int8_rewrites_keep_the_function(rewritten: str, request, real_encoder, texts: list[str]):
    """Scaling a layer's inputs down and its weights up, and computing the outlier channels
    beside the rest and adding them back, give the model's output (float error only)."""
    model, tokenizer = request.getfixturevalue(rewritten)
    plain = real_encoder._model[0].auto_model
    for got, expected in zip(_last_hidden(model, tokenizer, texts), _last_hidden(plain, tokenizer, texts)):
        assert np.abs(got - expected).max() <= 1e-3 * max(1.0, float(np.abs(expected).max()))


@pytest.mark.model
def test_without_outliers_or_bert_layers_nothing_is_split(real_encoder):
    import torch

    tokenizer = real_encoder._model.tokenizer
    plain = real_encoder._model[0].auto_model
    inputs = list(tokenizer.model_input_names)
    assert split_outliers(plain, tokenizer, ["a"], inputs, 256, ratio=1000.0) == (plain, None)  # no channel that far out
    other = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert split_outliers(other, tokenizer, ["a"], ["input_ids"], 256) == (other, None)


@pytest.mark.model
def test_a_split_that_changes_the_output_is_not_made(real_encoder, monkeypatch):
    """A layout where the output block's residual is not the feed-forward input (pre-norm layers)
    would be computed differently: the split checks the output on its texts and then leaves
    the transformer as it is."""
    import rag.encoding.int8 as onnx_encoder

    real = onnx_encoder._split_layer

    def elsewhere(layer, channels):  # as if the side path read another tensor than the first product
        real(layer, channels)
        layer.output.outlier_up.bias.add_(1.0)

    monkeypatch.setattr(onnx_encoder, "_split_layer", elsewhere)
    plain, tokenizer = real_encoder._model[0].auto_model, real_encoder._model.tokenizer
    assert split_outliers(plain, tokenizer, list(CALIBRATION), list(tokenizer.model_input_names), 256) == (plain, None)


@pytest.mark.model
def test_the_int8_copy_keeps_the_outlier_products_in_fp32(seed_index: Path):
    """The export quantizes every product but the outliers' (they would bring back the wide range
    they were split off for)."""
    import onnx

    nodes = onnx.load(str(current_generation(seed_index) / ONNX_DIR / "model.onnx")).graph.node
    outlier = [n.op_type for n in nodes if "/outlier_" in n.name and "MatMul" in n.name]
    assert outlier == ["MatMul"] * 8  # up and down in layers 0-3, fp32
    assert sum(n.op_type == "MatMulInteger" for n in nodes) == 36  # every layer's 6 products, int8


def test_a_smoothing_alpha_outside_0_1_is_refused_by_name(tmp_path: Path):
    from rag.encoding.export import export_onnx

    for alpha in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="smooth"):
            export_onnx(object(), tmp_path, "int8", smooth=alpha)


@pytest.mark.model
def test_smoothing_and_the_outlier_split_each_bring_int8_closer_to_the_model(tmp_path: Path, int8_encoder, real_encoder):
    """The shipped int8 copy against the same weights quantized without the outlier split, and
    without either step, on the seed articles' sentences (never used to set either): each step
    brings the vectors nearer the model's."""
    from rag.chunking.sentences import sentence_units
    from rag.encoding.export import export_onnx
    from rag.encoding.onnx import OnnxEncoder
    from rag.sources.files import load_documents

    plain, smoothed_only = tmp_path / "plain-int8", tmp_path / "smoothed-int8"
    record = export_onnx(real_encoder._model, plain, "int8", smooth=None)
    assert "smoothing" not in record and "outliers" not in record
    record = export_onnx(real_encoder._model, smoothed_only, "int8", split=False)
    assert "outliers" not in record and record["recipe"] == 3  # what recipe 3 made
    sentences = [doc.text[a:b] for doc in load_documents(ROOT / "seeds") for seg in doc.segments
                 for a, b in sentence_units(doc.text, seg)][:150]
    expected = real_encoder.encode_queries(sentences)

    def error(encoder) -> float:
        return float((1 - (encoder.encode_queries(sentences) * expected).sum(axis=1)).mean())

    shipped, smoothed_error = error(int8_encoder), error(OnnxEncoder(smoothed_only, "smoothed"))
    assert smoothed_error < 0.8 * error(OnnxEncoder(plain, "plain"))
    assert shipped < 0.5 * smoothed_error


def test_recipes_key_the_kept_copies_and_evaluation_caches(monkeypatch, tmp_path: Path):
    """A new recipe never finds a copy or an evaluation index made by another; recipe 1 keys
    stay as they were before recipes were recorded."""
    import rag.encoding.copies as copies
    import rag.encoding.recipes as onnx_encoder
    from rag.evaluation.beir import beir_cache_dir
    from rag.types import ChunkingConfig

    monkeypatch.setenv("RAG_CACHE", str(tmp_path))
    assert onnx_encoder.recipe_key("fp32") == [] and onnx_encoder.recipe_key("int8") == [RECIPES["int8"]]
    before = {p: (copies._folder(None, p), beir_cache_dir(tmp_path, "sha", "m", ChunkingConfig(), p)) for p in RECIPES}
    monkeypatch.setitem(onnx_encoder.RECIPES, "int8", RECIPES["int8"] + 1)
    after = {p: (copies._folder(None, p), beir_cache_dir(tmp_path, "sha", "m", ChunkingConfig(), p)) for p in RECIPES}
    assert after["fp32"] == before["fp32"]
    assert after["int8"][0] != before["int8"][0] and after["int8"][1] != before["int8"][1]


@pytest.mark.model
def test_an_index_copied_by_an_older_recipe_is_rebuilt_with_todays(seed_index: Path, tmp_path: Path, int8_encoder):
    """Updates never mix copies: an index whose copy an older recipe made gets today's copy
    and a full rebuild (an index already on today's recipe is updated in place)."""
    import dataclasses
    import shutil

    from rag.index.encoders import build_encoder
    from rag.index.layout import inspect_index
    from rag.index.rules import full_rebuild_reason

    manifest = read_manifest(seed_index)
    assert full_rebuild_reason(manifest, int8_encoder, manifest.chunking, "int8") is None
    older = dataclasses.replace(manifest, onnx={**manifest.onnx, "recipe": 1})
    reason = full_rebuild_reason(older, int8_encoder, manifest.chunking, "int8")
    assert reason is not None and "recipe" in reason

    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    generation = current_generation(root)
    for path in (generation / "manifest.json", generation / ONNX_DIR / "config.json"):
        data = json.loads(path.read_text())
        (data["onnx"] if "onnx" in data else data)["recipe"] = 1
        path.write_text(json.dumps(data))
    own = build_encoder(inspect_index(seed_index), None, None)
    assert own.folder == current_generation(seed_index) / ONNX_DIR  # today's recipe: the index's own copy
    fresh = build_encoder(inspect_index(root), None, None)
    assert getattr(fresh, "folder", None) != generation / ONNX_DIR
