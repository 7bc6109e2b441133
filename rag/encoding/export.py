"""Export the model's transformer to ONNX and check the copy against sentence-transformers.

Importing torch and sentence-transformers is most of a cold `rag ask`, and on 2 cores
onnxruntime runs this model faster than torch. A build therefore exports the model into the
index (`onnx/`) and checks that onnxruntime reproduces sentence-transformers' vectors on probe
texts. A model the copy cannot reproduce exactly (extra modules, prompts, other pooling) keeps
the sentence-transformers path: the copy is an optimisation, never a different model.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoding.encoder import normalize_rows
from rag.encoding.int8 import CALIBRATION, INT8_MIN_COSINE, SMOOTH_ALPHA, smoothed, split_outliers
from rag.encoding.onnx import OnnxEncoder
from rag.encoding.recipes import DEFAULT_PRECISION, PRECISIONS, SMOOTHED_ONLY, current_recipe

TOLERANCE = 1e-4  # fp32: max |difference| of a vector component against sentence-transformers

OPSET = 17
PROBES = (
    "Who attacked Bamako?",
    "Qu'est-ce que la gendarmerie ? Ünïcödé, emoji \N{GLOBE WITH MERIDIANS} and digits 2024.",
    "a",
    " ".join(["The long probe checks truncation at the model's input window."] * 60),
)


@contextmanager
def _root_logging_kept() -> Iterator[None]:
    """Silence the quantizer's advice and undo what it does to logging: its `logging.info`
    calls configure the root logger, after which bm25s's debug lines reach the terminal."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


class ExportUnavailable(Exception):
    """The model cannot be reproduced by the ONNX path; the reason says why."""


def pooling_of(model: Any) -> tuple[str, bool]:
    """(pooling mode, normalised) for a plain Transformer -> Pooling [-> Normalize] model."""
    kinds = [type(m).__name__ for m in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ExportUnavailable(f"modules {kinds} are not Transformer, Pooling[, Normalize]")
    config = model[1].get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # older sentence-transformers: one flag per mode
        on = [k for k, v in config.items() if k.startswith("pooling_mode") and v is True]
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(on[0]) if len(on) == 1 else None
    if mode not in ("mean", "cls"):
        raise ExportUnavailable(f"pooling {mode!r} is not mean or cls")
    if any(getattr(model, "prompts", {}).values()) or getattr(model, "default_prompt_name", None):
        raise ExportUnavailable("the model adds prompts to its inputs")
    return mode, len(kinds) == 3


def export_onnx(model: Any, folder: Path, precision: str = DEFAULT_PRECISION, smooth: float | None = SMOOTH_ALPHA,
                split: bool = True) -> dict[str, Any]:
    """Write `folder` (model.onnx, tokenizer.json, config.json) from a loaded SentenceTransformer.

    fp32: the transformer as exported, checked to reproduce the model's vectors to TOLERANCE.
    int8: the transformer smoothed with alpha `smooth` and its feed-forward outlier channels
    split off (see `smoothed` and `split_outliers`; smooth None: neither, split False: no split,
    both for comparisons; the same function, checked to the same TOLERANCE), then every weight
    but the outliers' side products quantized per channel (onnxruntime's dynamic int8
    quantization), checked to stay within INT8_MIN_COSINE of the model's vectors. A smoothed
    int8 copy only ever runs one unpadded text at a time (dynamic scales are set per run), so it
    is exported with the token ids as its only input: the mask would always say "every token"
    and the segment ids always be 0, and their operations are left out of the graph.
    Raises ExportUnavailable when the export cannot be made or does not reproduce the model.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if smooth is not None and not 0 < smooth <= 1:
        raise ValueError(f"smooth must be None or in (0, 1], got {smooth!r}")
    try:
        import onnx  # torch's exporter needs it; the int8 export reads node names
        import onnxruntime  # noqa: F401
        import torch
    except ImportError as exc:
        raise ExportUnavailable(f"{exc.name} is not installed") from None
    mode, normalized = pooling_of(model)
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportUnavailable("the tokenizer has no fast (tokenizers) version")
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    single = precision == "int8" and smooth is not None and "input_ids" in inputs  # one text per run
    fed = ["input_ids"] if single else inputs  # the graph's inputs
    config = {
        "pooling": mode,
        "normalize": normalized,
        "inputs": fed,
        "max_seq_length": int(model.max_seq_length),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "dimension": int(model.get_embedding_dimension()),
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__, "onnxruntime": _version("onnxruntime")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(backend.to_str(), encoding="utf-8")
    transformer = model[0].auto_model.eval()
    if precision == "int8" and smooth is not None:
        transformer, config["smoothing"] = smoothed(transformer, tokenizer, CALIBRATION, inputs,
                                                    int(model.max_seq_length), smooth)
        if split:
            transformer, config["outliers"] = split_outliers(transformer, tokenizer, CALIBRATION, inputs,
                                                             int(model.max_seq_length))
    # 1: as exported; an int8 copy smoothed but not split (for comparisons) is what recipe 3 made
    unsplit = precision == "int8" and not split
    config["recipe"] = 1 if smooth is None else SMOOTHED_ONLY if unsplit else current_recipe(precision)

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *tensors: Any) -> Any:
            named = dict(zip(fed, tensors))
            if single and "token_type_ids" in inputs:  # no mask: every token is attended to
                named["token_type_ids"] = torch.zeros_like(tensors[0])
            return self.inner(**named).last_hidden_state

    traced = ["a longer example sentence for tracing"] if single else ["a padded example", "a longer example sentence for tracing"]
    sample = tokenizer(traced, padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*fed, "token_embeddings"]}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHidden().eval(),
                tuple(sample[n] for n in fed),
                str(folder / "model.onnx"),
                dynamo=False,
                input_names=fed,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
    except Exception as exc:  # noqa: BLE001 (exporters raise many types for unsupported graphs)
        raise ExportUnavailable(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc)[:200]})") from None
    probes = list(PROBES)
    expected = normalize_rows(np.asarray(model.encode(probes, convert_to_numpy=True, show_progress_bar=False)))
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    encoder = OnnxEncoder(folder, name="probe")
    got = np.concatenate([encoder.encode_queries(probes), *(encoder.encode_queries([p]) for p in probes)])
    diff = float(np.abs(got - np.concatenate([expected, expected])).max())
    if not diff <= TOLERANCE:
        raise ExportUnavailable(f"the ONNX copy differs from the model by {diff:.2g} (> {TOLERANCE})")
    config["max_abs_diff"] = diff
    config["precision"] = "fp32"
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32 = folder / "model.fp32.onnx"
        os.replace(folder / "model.onnx", fp32)
        with warnings.catch_warnings(), _root_logging_kept():
            warnings.simplefilter("ignore")
            kept = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
                    if n.op_type == "MatMul" and "/outlier_" in n.name]  # split_outliers' side products
            split_layers = sum(1 for n in (config.get("outliers") or {}).get("channels", []) if n)
            if len(kept) != 2 * split_layers:
                raise ExportUnavailable(f"found {len(kept)} outlier products in the exported graph, expected {2 * split_layers}")
            quantize_dynamic(str(fp32), str(folder / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=kept)
        fp32.unlink()
        quantized = OnnxEncoder(folder, name="probe")
        got = np.concatenate([quantized.encode_queries(probes), *(quantized.encode_queries([p]) for p in probes)])
        cosine = float((got * np.concatenate([expected, expected])).sum(axis=1).min())
        if not cosine >= INT8_MIN_COSINE:
            raise ExportUnavailable(f"the int8 copy's vectors are within cosine {cosine:.3f} of the model's (< {INT8_MIN_COSINE})")
        config.update(precision="int8", min_cosine=cosine, max_abs_diff=float(np.abs(got - np.concatenate([expected, expected])).max()))
    (folder / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return config


def _version(package: str) -> str:
    from importlib import metadata  # imported here: a question never needs it

    return metadata.version(package)
