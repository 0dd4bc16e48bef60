"""Statistics of run scores: bootstrap intervals, interquartile mean, probability of
improvement."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

CI_RESAMPLES = 10_000
AGGREGATE_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0


def bootstrap_ci(
    values: Iterable[float],
    confidence: float = 0.95,
    n_resamples: int = CI_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values``.

    Resamples with replacement ``n_resamples`` times with ``numpy.random.default_rng(seed)``.
    One value gives ``(nan, nan)``: no interval. Identical values give a zero-width interval.
    """
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if x.size == 1:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def _stratified(
    groups: Sequence[np.ndarray], n_resamples: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each group resampled with replacement: arrays of shape (n_resamples, len(group))."""
    return [g[rng.integers(0, g.size, size=(n_resamples, g.size))] for g in groups]


def iqm_with_ci(
    per_env: Sequence[np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = AGGREGATE_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(IQM, low, high) of the scores of all runs on all envs (one array per env); the
    interval resamples runs within each env (stratified bootstrap)."""
    from rliable import metrics
    from scipy.stats import trim_mean

    per_env = [np.asarray(g, dtype=float) for g in per_env]
    point = float(metrics.aggregate_iqm(np.concatenate(per_env)))
    if sum(g.size for g in per_env) < 2:
        return (point, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    boots = trim_mean(np.hstack(_stratified(per_env, n_resamples, rng)), 0.25, axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return (point, float(lo), float(hi))


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 over all pairs, along the last axis (batched)."""
    diff = x[..., :, None] - y[..., None, :]
    return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-2, -1))


def probability_of_improvement(
    x_per_env: Sequence[np.ndarray],
    y_per_env: Sequence[np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = AGGREGATE_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(P(X > Y), low, high) averaged over envs (one array of run scores per env and
    algorithm). The point estimate is rliable's ``probability_of_improvement`` per env
    (envs may have different seed counts); the interval is a stratified bootstrap."""
    from rliable import metrics

    xs = [np.asarray(v, dtype=float) for v in x_per_env]
    ys = [np.asarray(v, dtype=float) for v in y_per_env]
    point = float(
        np.mean(
            [
                metrics.probability_of_improvement(x[:, None], y[:, None])
                for x, y in zip(xs, ys, strict=True)
            ]
        )
    )
    rng = np.random.default_rng(seed)
    per_env = [
        _improvement(bx, by)
        for bx, by in zip(
            _stratified(xs, n_resamples, rng), _stratified(ys, n_resamples, rng), strict=True
        )
    ]
    boots = np.mean(per_env, axis=0)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    return (point, float(lo), float(hi))
