"""Synthetic passage vectors with the neighbour structure of real ones, for scale benchmarks.

Real passage embeddings are not a cloud of near-copies: passages of one article sit around
the article's centre, articles spread around the corpus mean, and a passage's nearest
neighbours are mostly its own article's other passages. The model here is that two-level
Gaussian, fitted on real vectors grouped by article (title): the corpus mean, the covariance
of article centres (Ledoit-Wolf shrunk, since a corpus has only tens of articles), the
covariance of passages around their article's centre, the real distribution of passages per
article, how far each passage sits from its group's centre (a passage close to its siblings
has a close nearest neighbour), and the spread of sentences around their passage. Sampling
draws new articles and new passages from it, then normalises, so no vector is a copy of a
real one.

Whether that worked is measured, not assumed: `neighbour_cosines` gives the cosine of each
vector to its 1st and 10th nearest neighbour, and `rag bench` prints their distribution for
the real corpora and for a synthetic set of the same size side by side (docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VectorModel:
    """A fitted hierarchical Gaussian over unit passage vectors (all arrays float64): level 0
    is articles around the corpus mean, each next level groups inside the one before (the
    source files of an article), and passages sit around their finest group's centre."""

    mean: np.ndarray  # (d,) corpus mean
    factors: tuple[np.ndarray, ...]  # per level, then passages: F with F @ F.T the covariance
    # of a centre around its parent's (Ledoit-Wolf shrunk where groups are few)
    children: tuple[np.ndarray, ...]  # per level: real counts of children per group (the
    # next level's groups, or passages for the finest level), sampled from
    sentence_sd: float  # per-dimension spread of a sentence vector around its passage's
    spreads: tuple[np.ndarray, ...] = ()  # per level, then passages: each real parent's spread
    # of its children relative to the pooled one (articles are not all equally tight), sampled from
    # each real passage's distance from its group's centre relative to the RMS one (some
    # passages sit close to their siblings, some far), sampled from
    passage_scales: np.ndarray = field(default_factory=lambda: np.ones(1))


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance of the rows of `x` (already centred)."""
    n, p = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / p
    d2 = float(((s - mu * np.eye(p)) ** 2).sum())
    b2 = float(((x**2).sum(axis=1) ** 2).sum() / n**2 - (s**2).sum() / n)
    shrink = min(max(b2, 0.0), d2) / d2 if d2 > 0 else 1.0
    return shrink * mu * np.eye(p) + (1 - shrink) * s


def _clip(cov: np.ndarray) -> np.ndarray:
    """The nearest positive semi-definite matrix (negative eigenvalues set to zero)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.clip(values, 0, None)) @ vectors.T


def _factor(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0, None))


def _centres(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre of each group, group index of each row)."""
    _, inverse = np.unique(labels, return_inverse=True)
    centres = np.zeros((inverse.max() + 1, x.shape[1]))
    np.add.at(centres, inverse, x)
    return centres / np.bincount(inverse)[:, None], inverse


def fit(vectors: np.ndarray, levels: Sequence[Sequence[object]], sentences: np.ndarray | None = None,
        sentence_passage: Sequence[int] | None = None) -> VectorModel:
    """Fit on real unit `vectors` with group labels per level, coarsest first (e.g. article
    title, then source file); optionally real sentence vectors and their passage rows."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(axis=0)
    parent_of_row = np.zeros(len(x), dtype=np.int64)
    parent_centres = mean[None, :]
    covs, children, spreads = [], [], []
    for labels in levels:
        keyed = np.array([f"{p}\x00{label}" for p, label in zip(parent_of_row, labels)])  # nested in the parent
        centres, inverse = _centres(x, keyed)
        group_parent = np.zeros(len(centres), dtype=np.int64)
        group_parent[inverse] = parent_of_row
        covs.append(ledoit_wolf(centres - parent_centres[group_parent]))
        children.append(np.bincount(group_parent, minlength=len(parent_centres)))
        spreads.append(_spreads(centres - parent_centres[group_parent], group_parent))
        parent_of_row, parent_centres = inverse, centres
    residual = x - parent_centres[parent_of_row]
    covs.append(residual.T @ residual / max(1, len(x) - len(parent_centres)))
    children.append(np.bincount(parent_of_row))
    spreads.append(_spreads(residual, parent_of_row))
    passage_scales = _passage_scales(residual, parent_of_row)
    sentence_sd = 0.0
    if sentences is not None and sentence_passage is not None and len(sentences):
        diff = np.asarray(sentences, np.float64) - x[np.asarray(sentence_passage)]
        sentence_sd = float(np.sqrt((diff**2).mean()))
    # an observed group centre is the mean of its children, so its spread holds the children's
    # spread over their number: take that part out, finest level first (method of moments)
    for level in range(len(covs) - 2, -1, -1):
        counts = children[level + 1][children[level + 1] > 0]
        covs[level] = _clip(covs[level] - covs[level + 1] * float(np.mean(1.0 / counts)))
    return VectorModel(mean=mean, factors=tuple(_factor(c) for c in covs), children=tuple(c[c > 0] for c in children),
                       sentence_sd=sentence_sd, spreads=tuple(spreads), passage_scales=passage_scales)


def _passage_scales(residual: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Per passage in a group of two or more: its distance from the group's centre, the
    centring taken out (a group of m pulls its centre m/(m-1) closer in square), over the RMS."""
    counts = np.bincount(parent)[parent]
    many = counts >= 2
    if not many.any():
        return np.ones(1)
    norms = np.linalg.norm(residual[many], axis=1) * np.sqrt(counts[many] / (counts[many] - 1))
    return norms / np.sqrt(float((norms**2).mean()))


def _spreads(residual: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Per parent with two or more children: the RMS of its children's residuals (unbiased),
    over the pooled RMS."""
    counts = np.bincount(parent)
    sq = np.bincount(parent, weights=(residual**2).sum(axis=1))
    many = counts >= 2
    if not many.any():
        return np.ones(1)
    per = np.sqrt(sq[many] / (counts[many] - 1))
    pooled = np.sqrt(sq[many].sum() / (counts[many] - 1).sum())
    return per / pooled


def sample(model: VectorModel, n: int, rng: np.random.Generator, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """(n unit float32 vectors, the article of each): whole articles are drawn, each with
    real-sized groups, until `n` passages are covered (the last article cut short)."""
    levels = len(model.factors) - 1
    expected = float(np.prod([c.mean() for c in model.children[1:]])) if levels else float(n)
    articles = int(np.ceil(n / max(expected, 1.0) * 1.3)) + 2
    while True:
        drawn = _draw(model, n, articles, rng, chunk)
        if drawn is not None:
            return drawn
        articles *= 2


def _draw_spread(model: VectorModel, level: int, parents: int, rng: np.random.Generator) -> np.ndarray:
    if level >= len(model.spreads) or level == 0:  # the root has one parent: nothing to vary
        return np.ones(parents)
    return rng.choice(model.spreads[level], size=parents)


def _draw(model: VectorModel, n: int, articles: int, rng: np.random.Generator, chunk: int) -> tuple[np.ndarray, np.ndarray] | None:
    d, levels = len(model.mean), len(model.factors) - 1
    centres = model.mean[None, :]
    article = np.zeros(1, dtype=np.int64)
    for level in range(levels):
        sizes = np.array([articles]) if level == 0 else rng.choice(model.children[level], size=len(centres))
        owner = np.repeat(np.arange(len(centres)), sizes)
        article = np.arange(len(owner)) if level == 0 else article[owner]
        spread = _draw_spread(model, level, len(sizes), rng)[owner]
        centres = centres[owner] + spread[:, None] * (rng.standard_normal((len(owner), d)) @ model.factors[level].T)
    sizes = rng.choice(model.children[levels], size=len(centres)) if levels else np.array([n])
    if sizes.sum() < n:
        return None
    sizes = np.minimum(sizes, np.maximum(0, n - np.concatenate([[0], np.cumsum(sizes)[:-1]])))
    owner = np.repeat(np.arange(len(centres)), sizes)
    spread = _draw_spread(model, levels, len(centres), rng)
    out = np.empty((n, d), np.float32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        noise = rng.standard_normal((hi - lo, d)) @ model.factors[levels].T
        scale = spread[owner[lo:hi]] * rng.choice(model.passage_scales, size=hi - lo)
        rows = centres[owner[lo:hi]] + scale[:, None] * noise
        out[lo:hi] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out, article[owner]


def sentences_around(model: VectorModel, passages: np.ndarray, counts: Sequence[int], rng: np.random.Generator,
                     block: int = 100_000) -> np.ndarray:
    """Sentence vectors: `counts[i]` unit rows around passage i, spread as real sentences are
    (float32, drawn a block at a time: three million rows in float64 would need tens of GB)."""
    owner = np.repeat(np.arange(len(passages)), np.asarray(counts, dtype=np.int64))
    out = np.empty((len(owner), passages.shape[1]), np.float32)
    for lo in range(0, len(owner), block):
        rows = passages[owner[lo : lo + block]].astype(np.float32)
        rows += np.float32(model.sentence_sd) * rng.standard_normal(rows.shape, dtype=np.float32)
        out[lo : lo + block] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def neighbour_cosines(vectors: np.ndarray, k: int = 10, probes: int = 2000, seed: int = 0,
                      chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """(cosine to the 1st, to the `k`th nearest other vector) for up to `probes` rows, exact."""
    n = len(vectors)
    rows = np.random.default_rng(seed).choice(n, size=min(probes, n), replace=False)
    queries = np.asarray(vectors[rows], np.float32)
    best = np.full((len(rows), k + 1), -np.inf, np.float32)
    for lo in range(0, n, chunk):
        scores = queries @ np.asarray(vectors[lo : lo + chunk], np.float32).T
        inside = (rows >= lo) & (rows < lo + chunk)
        scores[np.nonzero(inside)[0], rows[inside] - lo] = -np.inf  # not itself
        top = np.partition(scores, scores.shape[1] - (k + 1), axis=1)[:, -(k + 1) :] if scores.shape[1] > k + 1 else scores
        best = -np.sort(-np.concatenate([best, top], axis=1), axis=1)[:, : k + 1]
    return best[:, 0], best[:, k - 1]


def summary(values: np.ndarray) -> dict[str, float]:
    """The 10th, 50th and 90th percentiles, rounded for a report."""
    return {f"p{p}": round(float(np.percentile(values, p)), 3) for p in (10, 50, 90)}
