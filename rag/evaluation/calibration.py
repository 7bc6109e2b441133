"""Fitting and judging abstention on labelled questions: pure numpy, plain data in and out.

Each question brings the feature rows of its shown hits (top hit first), whether the sources
answer it and which hits hold the answer. The logistic model is per hit: "does this passage
answer the question?" (L2, Newton's method; each question's hits share a weight of one), and
a question's support is its best hit's. Every figure reported for a fit is out of sample:
`cross_validate` holds out whole groups (articles, question sets) in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.types import FEATURES, AbstentionModel

# The features the shipped model uses (benchmarks/fit_abstention.py measures the others too).
MODEL_FEATURES = ("sentence", "negation", "missing", "unseen_share", "score_gap", "missing_name")


@dataclass(frozen=True)
class Labelled:
    """One question for calibration."""

    features: np.ndarray  # (hits, len(FEATURES)), top hit first
    answerable: bool
    group: str  # cross-validation unit: the article or set the question belongs to
    relevant: tuple[bool, ...] = ()  # per hit: it holds the answer (always False when unanswerable)


def fit_logistic(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-regularised logistic regression (the bias is not penalised)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w_s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    A = np.hstack([X, np.ones((len(X), 1))])
    beta = np.zeros(A.shape[1])
    penalty = np.full(A.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ beta, -50, 50)))
        gradient = A.T @ (w_s * (p - y)) + penalty * beta
        hessian = (A * (w_s * p * (1 - p))[:, None]).T @ A + np.diag(penalty) + 1e-9 * np.eye(A.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random
    negative (ties count half); nan without both kinds."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranked = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranked[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranked[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def threshold_for_answer_rate(answerable_support: Sequence[float], rate: float) -> float:
    """The highest threshold that still answers at least `rate` of the answerable questions."""
    values = np.sort(np.asarray(answerable_support, dtype=np.float64))
    if not len(values):
        raise ValueError("needs at least one answerable question")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    keep = int(np.ceil(rate * len(values) - 1e-9))
    return float(values[len(values) - keep])


def threshold_min_error(answerable: Sequence[float], unanswerable: Sequence[float],
                        cost_refused: float | None = None, cost_answered: float | None = None) -> float:
    """The threshold with the least cost of errors, placed mid-way in the widest gap among
    equally good cuts. By default each side's error rate counts equally (each wrongly refused
    answerable question costs 1/len(answerable), each answered unanswerable one
    1/len(unanswerable)); explicit costs count errors instead."""
    values = np.sort(np.unique(np.concatenate([np.asarray(answerable, float), np.asarray(unanswerable, float)])))
    if not len(values):
        raise ValueError("calibration needs at least one question")
    cuts = np.concatenate([[values[0] - 0.01], (values[:-1] + values[1:]) / 2, [values[-1] + 0.01]])
    pos, neg = np.asarray(answerable, float), np.asarray(unanswerable, float)
    refused = 1.0 / max(len(pos), 1) if cost_refused is None else cost_refused
    answered = 1.0 / max(len(neg), 1) if cost_answered is None else cost_answered
    errors = np.array([refused * (pos < c).sum() + answered * (neg >= c).sum() for c in cuts])
    best = np.flatnonzero(errors == errors.min())
    lower = np.concatenate([[values[0] - 0.02], values])
    upper = np.concatenate([values, [values[-1] + 0.02]])
    widths = upper[best] - lower[best]
    return float(np.clip(cuts[best[int(np.argmax(widths))]], 0.0, 1.0))


def question_support(model: AbstentionModel, questions: Sequence[Labelled]) -> np.ndarray:
    """Each question's support: its best hit's."""
    return np.array([float(model.support(q.features).max()) if len(q.features) else 0.0 for q in questions])


def hit_rows(questions: Sequence[Labelled], features: Sequence[str], weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, sample weight) with one row per shown hit: y says the hit holds the answer; a
    question's hits share its weight (1 unless `weights` says otherwise)."""
    columns = [FEATURES.index(f) for f in features]
    X, y, w = [], [], []
    for i, q in enumerate(questions):
        n = len(q.features)
        for j in range(n):
            X.append(q.features[j, columns])
            y.append(bool(q.answerable and j < len(q.relevant) and q.relevant[j]))
            w.append((1.0 if weights is None else weights[i]) / n)
    return np.array(X).reshape(len(X), len(columns)), np.array(y), np.array(w)


def fit_model(questions: Sequence[Labelled], fitted_on: str, answer_rate: float | None, l2: float = 1.0,
              sample_weight: Sequence[float] | None = None, features: Sequence[str] = MODEL_FEATURES) -> AbstentionModel:
    """Per-hit weights, then the threshold: the highest that answers `answer_rate` of the
    answerable questions, or (None) the one with the fewest errors on both sides."""
    X, y, w = hit_rows(questions, features, sample_weight)
    if not y.any() or y.all():
        raise ValueError("fitting needs hits that hold the answer and hits that do not")
    coef, bias = fit_logistic(X, y, w, l2)
    model = AbstentionModel(tuple(float(v) for v in coef), bias, 0.5, fitted_on, tuple(features), calibrated=True)
    return model.with_threshold(choose_threshold(model, questions, answer_rate))


def choose_threshold(model: AbstentionModel, questions: Sequence[Labelled], answer_rate: float | None) -> float:
    support = question_support(model, questions)
    answerable = np.array([q.answerable for q in questions])
    if answer_rate is not None:
        return threshold_for_answer_rate(support[answerable], answer_rate)
    return threshold_min_error(support[answerable], support[~answerable])


@dataclass(frozen=True)
class Rates:
    """How a support score and a threshold do on labelled questions."""

    answered: float  # share of answerable questions answered
    abstained: float  # share of unanswerable questions abstained on
    auroc: float
    answerable: int
    unanswerable: int

    def to_json(self) -> dict[str, float | int]:
        return {"answer_rate": round(self.answered, 4), "abstain_rate": round(self.abstained, 4),
                "auroc": round(self.auroc, 4), "answerable": self.answerable, "unanswerable": self.unanswerable}


def rates(support: np.ndarray, answerable: np.ndarray, threshold: float | np.ndarray) -> Rates:
    answerable = np.asarray(answerable, dtype=bool)
    answered = np.asarray(support) >= threshold
    return Rates(
        answered=float(answered[answerable].mean()) if answerable.any() else float("nan"),
        abstained=float((~answered[~answerable]).mean()) if (~answerable).any() else float("nan"),
        auroc=auroc(support, answerable),
        answerable=int(answerable.sum()),
        unanswerable=int((~answerable).sum()),
    )


def cross_validate(questions: Sequence[Labelled], answer_rate: float | None, refit: bool, base: AbstentionModel,
                   l2: float = 1.0) -> tuple[Rates, np.ndarray, np.ndarray]:
    """Leave each group out in turn: fit on the others (weights when `refit`, else only the
    threshold of `base`), score the held-out group. Returns the pooled out-of-sample rates,
    each question's held-out support and the threshold it was judged against."""
    groups = np.array([q.group for q in questions])
    support = np.zeros(len(questions))
    thresholds = np.zeros(len(questions))
    for group in np.unique(groups):
        train = [q for q, g in zip(questions, groups) if g != group]
        held = groups == group
        if not train or all(q.answerable for q in train) or not any(q.answerable for q in train):
            model = base
        elif refit:
            model = fit_model(train, "cross-validation fold", answer_rate, l2, features=base.features)
        else:
            model = base.with_threshold(choose_threshold(base, train, answer_rate))
        support[held] = question_support(model, [q for q, h in zip(questions, held) if h])
        thresholds[held] = model.threshold
    answerable = np.array([q.answerable for q in questions])
    return rates(support, answerable, thresholds), support, thresholds


def risk_coverage(support: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk) as the threshold falls: coverage is the share of questions answered,
    risk the share of answered ones whose shown hits hold no answer."""
    order = np.argsort(-np.asarray(support), kind="mergesort")
    wrong = ~np.asarray(correct, dtype=bool)[order]
    answered = np.arange(1, len(order) + 1)
    return answered / max(len(order), 1), np.cumsum(wrong) / answered
