"""Abstention: the model as plain JSON, the maths of fitting and judging, and out-of-sample CV."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.evaluation.calibration import (
    Labelled,
    auroc,
    cross_validate,
    fit_logistic,
    fit_model,
    risk_coverage,
    threshold_for_answer_rate,
    threshold_min_error,
)
from rag.models import default_model
from rag.types import FEATURES, AbstentionModel


def test_shipped_model_is_plain_json_and_says_what_it_was_fitted_on():
    model = default_model("sentence-transformers/all-MiniLM-L6-v2")
    assert "SQuAD 2.0" in model.fitted_on and "seeds/dev" in model.fitted_on and not model.calibrated
    assert AbstentionModel.from_json(json.loads(json.dumps(model.to_json()))) == model
    other = default_model("someone/else")
    assert other.weights == model.weights and "not fitted for someone/else" in other.fitted_on


def test_support_is_a_logistic_of_the_named_features():
    model = AbstentionModel((2.0, -1.0), 0.5, 0.4, "test", features=("sentence", "negation"))
    row = np.zeros(len(FEATURES))
    row[FEATURES.index("sentence")], row[FEATURES.index("negation")] = 0.7, 1.0
    assert model.support(row[None])[0] == pytest.approx(1 / (1 + np.exp(-(0.5 + 1.4 - 1.0))))


@pytest.mark.parametrize("bad", [{"weights": (1.0,)}, {"features": ("sentence", "colour")}, {"threshold": 1.5},
                                 {"weights": (float("nan"), 1.0)}])
def test_bad_models_are_refused(bad):
    kwargs = {"weights": (1.0, 1.0), "bias": 0.0, "threshold": 0.5, "fitted_on": "x", "features": ("sentence", "negation"), **bad}
    with pytest.raises(ValueError):
        AbstentionModel(**kwargs)


@given(st.lists(st.tuples(st.floats(-5, 5, allow_nan=False), st.booleans()), min_size=2, max_size=40))
def test_auroc_matches_counting_pairs(pairs):
    scores = [s for s, _ in pairs]
    labels = [b for _, b in pairs]
    pos = [s for s, b in pairs if b]
    neg = [s for s, b in pairs if not b]
    if not pos or not neg:
        assert np.isnan(auroc(scores, labels))
        return
    expected = sum((p > n) + 0.5 * (p == n) for p, n in product(pos, neg)) / (len(pos) * len(neg))
    assert auroc(scores, labels) == pytest.approx(expected)


def test_logistic_fit_reaches_the_optimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 2))
    y = (X @ np.array([2.0, -1.0]) + 0.5 + rng.logistic(size=5000)) > 0
    w, b = fit_logistic(X, y, l2=0.0)
    assert w == pytest.approx([2.0, -1.0], abs=0.2) and b == pytest.approx(0.5, abs=0.15)
    p = 1 / (1 + np.exp(-(X @ w + b)))
    assert np.abs(X.T @ (p - y)).max() < 1e-6 and abs((p - y).sum()) < 1e-6  # the gradient vanishes


def test_thresholds():
    assert threshold_for_answer_rate([0.1, 0.2, 0.3, 0.4], 0.75) == 0.2  # 3 of 4 reach it
    assert threshold_for_answer_rate([0.1, 0.2, 0.3, 0.4], 1.0) == 0.1
    assert threshold_min_error([0.5, 0.6, 0.7], [0.1, 0.2, 0.3]) == pytest.approx(0.4)
    t = threshold_min_error([0.4, 0.6], [0.1, 0.5])  # not separable: one error either way
    assert 0.1 < t <= 0.6


def test_risk_coverage():
    coverage, risk = risk_coverage(np.array([0.9, 0.8, 0.1]), np.array([True, False, True]))
    assert coverage.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert risk.tolist() == pytest.approx([0.0, 0.5, 1 / 3])


def synthetic(groups: int = 4, per_group: int = 60, seed: int = 1) -> list[Labelled]:
    """Questions whose answerable ones have a higher "sentence" feature on their relevant hit."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(groups):
        for i in range(per_group):
            answerable = bool(i % 2)
            rows = np.zeros((3, len(FEATURES)))
            rows[:, FEATURES.index("sentence")] = rng.normal(0.3, 0.1, 3)
            rows[:, FEATURES.index("score_gap")] = [0.0, -0.1, -0.2]
            if answerable:
                rows[0, FEATURES.index("sentence")] += 0.3
            out.append(Labelled(rows, answerable, f"g{g}", (answerable, False, False)))
    return out


def test_fitted_model_separates_and_cross_validation_is_out_of_sample():
    data = synthetic()
    model = fit_model(data, "synthetic", answer_rate=0.9)
    assert model.calibrated and model.weights[model.features.index("sentence")] > 0
    base = model.with_threshold(0.5)
    rates, support, thresholds = cross_validate(data, 0.9, refit=True, base=base)
    assert rates.auroc > 0.9 and 0.8 <= rates.answered <= 1.0
    # a fold never sees its own group: poisoning one group's labels must not change its held-out scores
    poisoned = [Labelled(q.features, (not q.answerable) if q.group == "g0" else q.answerable, q.group,
                         tuple(not r for r in q.relevant) if q.group == "g0" else q.relevant) for q in data]
    _, support2, _ = cross_validate(poisoned, 0.9, refit=True, base=base)
    held = np.array([q.group == "g0" for q in data])
    np.testing.assert_allclose(support[held], support2[held])
    assert not np.allclose(support[~held], support2[~held])


def test_the_strict_operating_point_round_trips_and_never_answers_more():
    from rag.types import AbstentionModel

    model = AbstentionModel((1.0,), 0.0, 0.3, "test", ("sentence",), strict_threshold=0.6)
    again = AbstentionModel.from_json(model.to_json())
    assert again == model and again.threshold_for("strict") == 0.6 and again.threshold_for("lenient") == 0.3
    below = AbstentionModel((1.0,), 0.0, 0.5, "test", ("sentence",), strict_threshold=0.2)
    assert below.threshold_for("strict") == 0.5  # strict never answers what lenient refuses
    none = AbstentionModel((1.0,), 0.0, 0.4, "test", ("sentence",))
    assert none.threshold_for("strict") == 0.4 and "strict_threshold" not in none.to_json()
    with pytest.raises(ValueError, match="strict_threshold"):
        AbstentionModel((1.0,), 0.0, 0.4, "test", ("sentence",), strict_threshold=1.5)
    with pytest.raises(ValueError, match="strict_threshold"):
        AbstentionModel.from_json({**none.to_json(), "strict_threshold": "high"})
