"""The int8 recipe: smoothing, outlier channels kept in float, calibration on probe texts.

Pure graph and array transformations of an exported fp32 copy; the result is checked against
the fp32 vectors (cosine bounds in this module) before a build keeps it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

INT8_MIN_COSINE = 0.98  # int8: every probe's vector within this cosine of sentence-transformers' (at export)
INT8_ANY_TEXT_COSINE = 0.95  # int8, any text at all (one character, random symbols): the stated bound, a

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
