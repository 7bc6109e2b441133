"""The index's own ONNX copy of the model: the same vectors, without torch.

Importing torch and sentence-transformers is most of a cold `rag ask` (7 s of 9-11 s), and
on 2 cores onnxruntime runs this model faster than torch, for one question and for batches
of passages. A build therefore exports the model's transformer into the index (`onnx/`) and
checks that onnxruntime reproduces sentence-transformers' vectors on probe texts; passages
and questions are then encoded with onnxruntime and the tokenizers library, which import in
a fraction of a second. A model the copy cannot reproduce exactly (extra modules, prompts,
other pooling) keeps the sentence-transformers path: the copy is an optimisation, never a
different model.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import Span, encode_each, normalize_rows
from .store import ONNX_DIR

TOLERANCE = 1e-4  # fp32: max |difference| of a vector component against sentence-transformers
INT8_MIN_COSINE = 0.98  # int8: every probe's vector within this cosine of sentence-transformers' (at export)
INT8_ANY_TEXT_COSINE = 0.95  # int8, any text at all (one character, random symbols): the stated bound, a
# property test; real text stays closer (docs/speed.md, "int8": SQuAD passages and questions >= 0.98)
PRECISIONS = ("int8", "fp32")
# How a copy at each precision is made (export, smoothing, quantization). Recorded in the copy,
# part of the key of every kept copy and cached evaluation index, and an index whose copy was
# made by another recipe is rebuilt in full at its next update (rag.build.full_rebuild_reason).
# 1: as exported (and quantized); int8 2: smoothed first; int8 3: smoothed, and exported for one
# text per run, without the attention-mask input (the same vectors as 2, fewer operations);
# int8 4: as 3, with the feed-forward outlier channels split off and kept in fp32.
RECIPES = {"fp32": 1, "int8": 4}
SMOOTHED_ONLY = 3  # the recipe of an int8 copy smoothed but not split (export_onnx(split=False))
# int8: share of each channel's activation range moved into the weights before quantizing
# (SmoothQuant's alpha). Chosen on fidelity to the fp32 copy over SQuAD v1.1's tuning articles
# (0.5 to 0.85 alike; docs/speed.md, "int8", and benchmarks/int8_fidelity.py).
SMOOTH_ALPHA = 0.75
# int8: a feed-forward channel whose peak over CALIBRATION is at least this many times the
# 99th percentile of its layer's channel peaks is an outlier, computed in fp32 beside the int8
# product (at most OUTLIER_MAX a layer). MiniLM's layers 0-3 have one or two, 4.3-5.8 times
# their layer's 99th percentile; no other channel of any layer reaches 1.9 times it, so any ratio
# from 1.9 to 4.2 picks the same five (docs/speed.md, "int8").
OUTLIER_RATIO = 3.0
OUTLIER_MAX = 8
# Fixed text whose activations set the smoothing: generic sentences and questions, none from
# an evaluation set nor the export's own PROBES (BERT's outlier channels are the model's, not
# the text's).
CALIBRATION = (
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "How many people were injured in the accident on the highway?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "She was born in 1952 in a small village near the river and later moved to the capital.",
    "Who wrote the novel, and when was it first published?",
    "The company reported revenue of $4.2 billion, up 12% from the previous quarter.",
    "Heavy rain caused flooding in several districts, and schools were closed for two days.",
    "The treaty was signed by representatives of both governments after months of negotiation.",
    "What is the capital of the country that hosted the 2016 Summer Olympics?",
    "Engineers tested the new bridge design under loads far greater than expected traffic.",
    "In the second half, the team scored three goals and won the championship.",
    "The museum's collection includes paintings, sculptures and manuscripts from the 14th century.",
)
DEFAULT_PRECISION = "int8"  # docs/speed.md, "int8": the same SQuAD quality, builds in about half the time
OPSET = 17
PROBES = (
    "Who attacked Bamako?",
    "Qu'est-ce que la gendarmerie ? Ünïcödé, emoji \N{GLOBE WITH MERIDIANS} and digits 2024.",
    "a",
    " ".join(["The long probe checks truncation at the model's input window."] * 60),
)


def recipe_of(config: dict[str, Any] | None) -> int:
    """The recipe a copy's config records (copies made before recipes were recorded: 1)."""
    return int((config or {}).get("recipe", 1))


def current_recipe(precision: str) -> int:
    """How a copy at `precision` is made today."""
    return RECIPES.get(precision, 1)


def is_current_recipe(config: dict[str, Any] | None, precision: str) -> bool:
    """Whether a copy (its config) was made the way a copy at `precision` is made today."""
    return recipe_of(config) == current_recipe(precision)


def recipe_key(precision: str) -> list[int]:
    """What a cache key adds for the current recipe at `precision`: nothing for recipe 1, so
    that keys made before recipes existed still find their copies."""
    recipe = current_recipe(precision)
    return [recipe] if recipe != 1 else []


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


def smoothed(transformer: Any, tokenizer: Any, texts: Sequence[str], inputs: Sequence[str], max_length: int,
             alpha: float = SMOOTH_ALPHA) -> tuple[Any, dict[str, Any] | None]:
    """A copy of a BERT-style transformer computing the same function, with each layer's
    self-attention input (read by query, key and value) and first feed-forward input scaled per
    channel by 1/s and the weights reading them by s (SmoothQuant): s = amax(|x|)^alpha /
    amax(|w|)^(1 - alpha) over `texts`, each run alone (cut at `max_length` tokens, as the model
    cuts them). Dynamic int8 quantization gives a whole activation matrix one scale, which a
    few large channels (the outputs of BERT's layer norms) otherwise spend; scaled down, they
    leave the other channels more levels, and the weights' rows that read them, scaled up, are
    absorbed by the weights' per-column int8 scales. Returns (copy, what was done), or the
    transformer itself and None when its layers are not laid out as BERT's."""
    import copy

    import torch

    linear = torch.nn.Linear

    def parts(layer: Any) -> tuple[Any, ...] | None:
        found = (getattr(getattr(getattr(layer, "attention", None), "self", None), n, None) for n in ("query", "key", "value"))
        ffn = getattr(getattr(layer, "intermediate", None), "dense", None)
        got = (*found, ffn)
        return got if all(isinstance(m, linear) for m in got) else None

    if _bert_layers(transformer, parts) is None:
        return transformer, None
    model = copy.deepcopy(transformer).eval()
    watched = {}
    for i, layer in enumerate(model.encoder.layer):
        query, _, _, ffn = parts(layer)  # type: ignore[misc]  (checked above)
        watched[(i, "attention")], watched[(i, "ffn")] = query, ffn
    peaks = input_peaks(model, tokenizer, texts, inputs, max_length, watched)

    class Scaled(torch.nn.Module):
        """`inner(x / s, ...)`, the division written as a product, done once for every weight
        that reads x (the self-attention's residual keeps the unscaled x: BertAttention passes
        its own input to the output block)."""

        def __init__(self, inner: Any, s: torch.Tensor) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("inverse", 1.0 / s)

        def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
            return self.inner(x * self.inverse, *args, **kwargs)

    with torch.no_grad():
        for i, layer in enumerate(model.encoder.layer):
            query, key, value, ffn = parts(layer)  # type: ignore[misc]
            for group, owner, name, reading in (("attention", layer.attention, "self", (query, key, value)),
                                                ("ffn", layer.intermediate, "dense", (ffn,))):
                w = torch.stack([m.weight.abs().amax(dim=0) for m in reading]).amax(dim=0)
                s = (peaks[(i, group)].clamp(min=1e-5) ** alpha / w.clamp(min=1e-5) ** (1 - alpha)).clamp(1e-2, 1e2)
                for m in reading:
                    m.weight.mul_(s[None, :])
                setattr(owner, name, Scaled(getattr(owner, name), s))
    return model, {"alpha": alpha, "layers": len(model.encoder.layer), "calibration_texts": len(texts)}


def input_peaks(model: Any, tokenizer: Any, texts: Sequence[str], inputs: Sequence[str], max_length: int,
                watched: dict[Any, Any]) -> dict[Any, Any]:
    """Per key of `watched` (key -> module), the largest |value| of each channel of the module's
    input over `texts`, each run alone and cut at `max_length` tokens, as the model cuts them."""
    import torch

    peaks: dict[Any, torch.Tensor] = {}

    def watch(key: Any) -> Any:
        def hook(_module: Any, args: tuple[Any, ...], _output: Any) -> None:
            peak = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0)
            peaks[key] = torch.maximum(peaks[key], peak) if key in peaks else peak
        return hook

    hooks = [module.register_forward_hook(watch(key)) for key, module in watched.items()]
    try:
        for _ in _each_output(model, tokenizer, texts, inputs, max_length):
            pass
    finally:
        for hook in hooks:
            hook.remove()
    return peaks


def outlier_channels(peaks: np.ndarray, ratio: float = OUTLIER_RATIO, most: int = OUTLIER_MAX) -> list[int]:
    """One layer's outlier channels, ascending: those whose peak is at least `ratio` times the
    99th percentile of all its channels' peaks (the `most` highest); none when that is 0."""
    floor = ratio * float(np.quantile(peaks, 0.99))
    if not floor > 0:
        return []
    top = np.argsort(-peaks, kind="stable")[:most]
    return sorted(int(c) for c in top if peaks[c] >= floor)


def split_outliers(transformer: Any, tokenizer: Any, texts: Sequence[str], inputs: Sequence[str], max_length: int,
                   ratio: float = OUTLIER_RATIO, most: int = OUTLIER_MAX) -> tuple[Any, dict[str, Any] | None]:
    """A copy of a BERT-style transformer computing the same function, each layer's feed-forward
    outlier channels taken out of its int8 path (LLM.int8()'s decomposition, at export time).

    The second feed-forward product reads the activation's output, and in the first layers one
    or two of its channels peak at several times the layer's 99th percentile (BERT's outlier
    dimensions, not the text's). Dynamic int8 quantization gives the whole matrix one scale, so
    those few channels coarsen all the others, and smoothing cannot move them into the weights
    (they come out of the activation, not out of a product). Here the first product of the layer
    loses the outlier rows and the second their columns; the outliers are computed in
    `outlier_up` and `outlier_down` from the layer's feed-forward input and added to it before
    the layer norm (BertOutput computes norm(dense(h) + input)). The export leaves products
    named `outlier_` in fp32. Outliers: `outlier_channels` of the peaks over `texts`. Returns
    (copy, what was done), or the transformer itself and None when it is not laid out as
    BERT's, has no outlier, or the copy does not give its output on `texts` (a layout whose
    output block's residual is not the feed-forward input, as in pre-norm layers)."""
    import copy

    import torch

    layers = _bert_layers(transformer, _ffn_parts)
    if layers is None:
        return transformer, None
    peaks = input_peaks(transformer, tokenizer, texts, inputs, max_length,
                        {i: _ffn_parts(layer)[1] for i, layer in enumerate(layers)})  # type: ignore[index]
    chosen = [outlier_channels(peaks[i].numpy(), ratio, most) for i in range(len(layers))]
    if not any(chosen):
        return transformer, None
    model = copy.deepcopy(transformer).eval()
    with torch.no_grad():
        for layer, channels in zip(model.encoder.layer, chosen):
            if channels:
                _split_layer(layer, channels)
    pairs = zip(_each_output(model, tokenizer, texts, inputs, max_length),
                _each_output(transformer, tokenizer, texts, inputs, max_length))
    for got, expected in pairs:  # the same function, or no split
        if not float((got - expected).abs().max()) <= 1e-3 * max(1.0, float(expected.abs().max())):
            return transformer, None
    return model, {"ratio": ratio, "channels": [len(c) for c in chosen], "calibration_texts": len(texts)}


def _bert_layers(transformer: Any, parts: Any) -> Any:
    """The transformer's layers when it has some and `parts(layer)` finds what it needs in each, else None."""
    layers = getattr(getattr(transformer, "encoder", None), "layer", None)
    if layers is None or not len(layers) or any(parts(layer) is None for layer in layers):
        return None
    return layers


def _each_output(model: Any, tokenizer: Any, texts: Sequence[str], inputs: Sequence[str], max_length: int) -> Iterator[Any]:
    """The last hidden state of each text, run alone and cut at `max_length` tokens, as the model cuts them."""
    import torch

    with torch.no_grad():
        for text in texts:
            encoded = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
            yield model(**{n: encoded[n] for n in inputs if n in encoded}).last_hidden_state


def _ffn_parts(layer: Any) -> tuple[Any, Any] | None:
    """(first, second) feed-forward Linear of a BERT layer (the first inside its smoothing), or None."""
    import torch

    up = getattr(getattr(layer, "intermediate", None), "dense", None)
    down = getattr(getattr(layer, "output", None), "dense", None)
    up = getattr(up, "inner", up)  # smoothed: the product inside the input's scaling
    linear = torch.nn.Linear
    return (up, down) if isinstance(up, linear) and isinstance(down, linear) else None


def _linear(weight: Any, bias: Any) -> Any:
    """A Linear holding copies of these weights and bias (None: no bias), on their device and dtype."""
    import torch

    layer = torch.nn.utils.skip_init(torch.nn.Linear, weight.shape[1], weight.shape[0], bias=bias is not None,
                                     device=weight.device, dtype=weight.dtype)
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)
    return layer


def _split_layer(layer: Any, channels: Sequence[int]) -> None:
    """Move `channels` of a BERT layer's feed-forward block to a side path (see `split_outliers`)."""
    import torch

    class WithOutliers(torch.nn.Module):
        """`output(h, x + outlier_down(act(outlier_up(x))))`: the layer's output block, with
        the outlier channels' share of the second product added to its residual input."""

        def __init__(self, output: Any, up: Any, act: Any, down: Any) -> None:
            super().__init__()
            self.output, self.outlier_up, self.act, self.outlier_down = output, up, act, down

        def forward(self, hidden: Any, input_tensor: Any) -> Any:
            return self.output(hidden, input_tensor + self.outlier_down(self.act(self.outlier_up(input_tensor))))

    up, down = _ffn_parts(layer)  # type: ignore[misc]
    outer = layer.intermediate.dense
    scale = outer.inverse if outer is not up else torch.ones_like(up.weight[0])  # smoothed: read x / s
    held = set(channels)
    picked = torch.tensor(list(channels))
    keep = torch.tensor([c for c in range(up.out_features) if c not in held])

    def part(bias: Any, at: Any) -> Any:
        return None if bias is None else bias[at]

    side_up = _linear(up.weight[picked] * scale[None, :], part(up.bias, picked))
    side_down = _linear(down.weight[:, picked], None)
    narrow_up = _linear(up.weight[keep], part(up.bias, keep))
    if outer is up:
        layer.intermediate.dense = narrow_up
    else:
        outer.inner = narrow_up
    layer.output.dense = _linear(down.weight[:, keep], down.bias)
    layer.output = WithOutliers(layer.output, side_up, layer.intermediate.intermediate_act_fn, side_down)


def _version(package: str) -> str:
    from importlib import metadata  # imported here: a question never needs it

    return metadata.version(package)


# How long a session's idle threads wait for more work before they sleep. onnxruntime's own
# default spins them much longer, through the search that follows a question's encoding, and
# on two cores they took the second core from that search: warm `ask` took twice as long
# (docs/speed.md, "Queries").
SPIN_KEY, SPIN_US = "session.intra_op.spin_duration_us", 30


class OnnxEncoder:
    """The Encoder contract on an exported copy of a model, run by onnxruntime."""

    def __init__(self, folder: Path, name: str, batch_size: int = 16) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.folder, self.config = folder, config
        self.name, self.batch_size = name, batch_size
        self.precision = str(config.get("precision", "fp32"))
        self.dimension = int(config["dimension"])
        self.max_seq_length = int(config["max_seq_length"])
        self._pooling, self._inputs = config["pooling"], list(config["inputs"])
        # int8: scales are set per run, so one text per run keeps each vector a function of its
        # own text; a copy without a mask input cannot run a padded batch at all
        self.one_per_run = self.precision == "int8" or "attention_mask" not in self._inputs
        self._spec = (folder / "tokenizer.json").read_text(encoding="utf-8")
        self._tokenizer = Tokenizer.from_str(self._spec)
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.enable_padding(pad_id=int(config["pad_id"]), pad_token=str(config["pad_token"]))
        self._session = self._new_session(min(os.cpu_count() or 1, 4))  # questions: one text, every core

    def _new_session(self, threads: int) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry(SPIN_KEY, str(SPIN_US))
        return onnxruntime.InferenceSession(str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    @cached_property
    def _workers(self) -> list[Any]:
        """One single-threaded session per core (up to 4), for passages: on a small CPU, whole
        texts run side by side keep the cores busier than one text's matrices split between
        them (docs/speed.md, "Build")."""
        return [self._new_session(1) for _ in range(min(os.cpu_count() or 1, 4))]

    @cached_property
    def _counter(self) -> Any:
        """A second tokenizer without truncation or padding, for chunking only (a question
        never needs it, so `rag ask` does not pay for it)."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self._spec)
        counter.no_truncation()
        counter.no_padding()
        return counter

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch_fast(list(texts), add_special_tokens=False)] if texts else []

    def _run(self, texts: Sequence[str], session: Any = None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """(token embeddings, attention mask, encodings) of one padded batch."""
        if len(texts) > 1 and self.one_per_run:
            raise ValueError(f"this {self.precision} copy runs one text at a time, got {len(texts)}")
        # one text (every passage, every int8 question) without the batch call's hand-off to
        # the tokenizer's thread pool, which cost more than tokenizing it
        encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        return (session or self._session).run(None, {n: feeds[n] for n in self._inputs})[0], mask, encodings

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            return tokens[:, 0]
        weights = mask[..., None].astype(np.float32)
        return (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dimension) float32 unit rows, as sentence-transformers would give them."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        if self.one_per_run:
            return normalize_rows(np.concatenate([self._pool(*self._run([t])[:2]) for t in texts]))
        tokens, mask, _ = self._run(texts)
        return normalize_rows(self._pool(tokens, mask))

    def encode_passages(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]], progress: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and each passage's span vectors, from one pass (see rag.embedding):
        one passage per run (no padding, and int8 vectors that do not depend on their
        neighbours in a batch), on one session per core."""
        workers = self._workers

        def encode_one(text: str, worker: int) -> tuple[np.ndarray, np.ndarray, Sequence[Sequence[int]]]:
            tokens, mask, encodings = self._run([text], workers[worker])
            return self._pool(tokens, mask)[0], tokens[0], encodings[0].offsets

        return encode_each(texts, spans, self.dimension, encode_one, len(workers), progress)


def open_onnx_encoder(generation: Path, name: str) -> OnnxEncoder | None:
    """The generation's ONNX copy of its model, or None when it has none or onnxruntime is
    missing; a damaged copy is a one-line error saying how to rebuild."""
    folder = generation / ONNX_DIR
    if not folder.is_dir():
        return None
    try:
        return OnnxEncoder(folder, name)
    except ImportError:
        return None
    except Exception as exc:  # noqa: BLE001 (onnxruntime and tokenizers raise their own types)
        from .errors import RagError

        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise RagError(
            f"the index's copy of the model in {folder} is damaged ({detail}); rebuild it with: rag index --full"
        ) from None


def question_encoder(generation: Path, model: str, loaded: Any = None) -> Any:
    """What encodes questions for a generation: its ONNX copy of the model when it has one
    (no torch import), else `loaded` or a freshly loaded model."""
    onnx = open_onnx_encoder(generation, model)
    if onnx is not None:
        return onnx
    if loaded is not None:
        return loaded
    from .embedding import SentenceTransformerEncoder

    return SentenceTransformerEncoder(model)
