"""Which ONNX copy a build makes: precisions, the int8 recipe's name and its version key.

A recipe key is recorded in the manifest, so an index whose copy was made by an older recipe is
rebuilt instead of served with a copy the current code would not make.
"""

from __future__ import annotations

from typing import Any

# property test; real text stays closer (docs/speed.md, "int8": SQuAD passages and questions >= 0.98)
PRECISIONS = ("int8", "fp32")
# How a copy at each precision is made (export, smoothing, quantization). Recorded in the copy,
# part of the key of every kept copy and cached evaluation index, and an index whose copy was
# made by another recipe is rebuilt in full at its next update (rag.index.rules.full_rebuild_reason).
# 1: as exported (and quantized); int8 2: smoothed first; int8 3: smoothed, and exported for one
# text per run, without the attention-mask input (the same vectors as 2, fewer operations);
# int8 4: as 3, with the feed-forward outlier channels split off and kept in fp32.
RECIPES = {"fp32": 1, "int8": 4}
SMOOTHED_ONLY = 3  # the recipe of an int8 copy smoothed but not split (export_onnx(split=False))

DEFAULT_PRECISION = "int8"  # docs/speed.md, "int8": the same SQuAD quality, builds in about half the time


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


ONNX_DIR = "onnx"
