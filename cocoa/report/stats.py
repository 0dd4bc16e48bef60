"""Statistics of run scores, on rliable: bootstrap intervals, interquartile mean (IQM),
probability of improvement and IQM curves over env steps.

Every interval is rliable's ``library.get_interval_estimates``: a 95% percentile interval from
a stratified bootstrap, which resamples the runs of each env (stratum) with replacement and
independently of the other envs, so envs with different seed counts mix. The point estimates
are rliable's ``metrics``. rliable draws its resamples from numpy's global generator;
``seeded`` seeds it (``BOOTSTRAP_SEED``) for each estimate and restores it afterwards, so
tables are reproducible and callers' random streams are untouched.

A stratum with one run has nothing to resample: a cell with one seed has no interval (NaN),
and an aggregate whose every env has one run has none either.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

CI_RESAMPLES = 2_000
AGGREGATE_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def rliable_library():
    """``rliable.library``, imported on first use (it pulls in arch and absl)."""
    return importlib.import_module("rliable.library")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """numpy's global generator seeded with ``seed`` inside the block, restored after it."""
    state = np.random.get_state()  # noqa: NPY002 (rliable draws from the global generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def interval(
    strata: Sequence[np.ndarray],
    func: Callable[..., np.ndarray],
    n_resamples: int | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high) of ``func(*strata)`` with rliable's stratified bootstrap; each
    stratum's first axis holds runs and is resampled independently of the others.
    ``n_resamples`` defaults to ``AGGREGATE_RESAMPLES``."""
    library = rliable_library()
    n_resamples = AGGREGATE_RESAMPLES if n_resamples is None else n_resamples
    with seeded(seed):
        point, bounds = library.get_interval_estimates(
            {"x": list(strata)},
            func,
            reps=n_resamples,
            confidence_interval_size=CONFIDENCE,
        )
    return point["x"], bounds["x"][0], bounds["x"][1]


def _column(values: Iterable[float]) -> np.ndarray:
    """Scores as rliable's (runs x 1 task) matrix."""
    return np.asarray(list(values), dtype=float).reshape(-1, 1)


def bootstrap_ci(
    values: Iterable[float],
    confidence: float = CONFIDENCE,
    n_resamples: int | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """95% bootstrap interval of the mean of ``values`` (the runs of one cell): rliable's
    ``get_interval_estimates`` with ``metrics.aggregate_mean``.

    One value gives ``(nan, nan)``: no interval. Identical values give a zero-width one.
    ``n_resamples`` defaults to ``CI_RESAMPLES``.
    """
    from rliable import metrics

    if confidence != CONFIDENCE:
        raise ValueError(f"intervals are {CONFIDENCE:.0%}; got confidence {confidence}")
    x = _column(values)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if x.size == 1:
        return (math.nan, math.nan)
    n_resamples = CI_RESAMPLES if n_resamples is None else n_resamples
    _, lo, hi = interval([x], lambda s: np.array([metrics.aggregate_mean(s)]), n_resamples, seed)
    return (float(lo[0]), float(hi[0]))


def pooled_iqm(*strata: np.ndarray) -> np.ndarray:
    """rliable's IQM of all runs of all strata; with a trailing steps axis, one IQM per step
    (shape: steps), else shape (1,)."""
    from rliable import metrics

    flat = [s.reshape(s.shape[0], -1) for s in strata]  # runs x (1 or steps)
    pooled = np.concatenate(flat, axis=0)
    return np.array([metrics.aggregate_iqm(pooled[:, k]) for k in range(pooled.shape[1])])


def iqm_with_ci(
    per_env: Sequence[np.ndarray],
    confidence: float = CONFIDENCE,
    n_resamples: int | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(IQM, low, high) of the scores of all runs on all envs (one array per env); the
    interval resamples runs within each env (rliable's stratified bootstrap). No interval
    (NaN) when no env has two runs."""
    if confidence != CONFIDENCE:
        raise ValueError(f"intervals are {CONFIDENCE:.0%}; got confidence {confidence}")
    strata = [_column(g) for g in per_env]
    point = float(pooled_iqm(*strata)[0])
    if max(s.shape[0] for s in strata) < 2:
        return (point, math.nan, math.nan)
    _, lo, hi = interval(strata, pooled_iqm, n_resamples, seed)
    return (point, float(lo[0]), float(hi[0]))


def _u_fraction(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all pairs of runs: the Mann-Whitney U / (n_x n_y) that
    rliable's ``probability_of_improvement`` gets from scipy, counted directly (exact for
    these sizes, and fast enough to call once per resample)."""
    diff = x.reshape(-1, 1) - y.reshape(1, -1)
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def probability_of_improvement(
    x_per_env: Sequence[np.ndarray],
    y_per_env: Sequence[np.ndarray],
    confidence: float = CONFIDENCE,
    n_resamples: int | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """(P(X > Y), low, high): rliable's ``metrics.probability_of_improvement`` per env
    (Mann-Whitney U / (n_x n_y), ties count one half) averaged over envs (one array of run
    scores per env and algorithm; envs may have different seed counts). The interval
    resamples each algorithm's runs within each env (the same U per resample)."""
    from rliable import metrics

    if confidence != CONFIDENCE:
        raise ValueError(f"intervals are {CONFIDENCE:.0%}; got confidence {confidence}")
    xs = [_column(v) for v in x_per_env]
    ys = [_column(v) for v in y_per_env]
    if len(xs) != len(ys) or not xs:
        raise ValueError("probability_of_improvement needs the same envs, at least one, for both")
    n = len(xs)

    def average(*strata: np.ndarray) -> np.ndarray:
        return np.array([np.mean([_u_fraction(x, y) for x, y in zip(strata[:n], strata[n:])])])

    point = float(
        np.mean([metrics.probability_of_improvement(x, y) for x, y in zip(xs, ys, strict=True)])
    )
    if max(s.shape[0] for s in xs + ys) < 2:
        return (point, math.nan, math.nan)
    _, lo, hi = interval(xs + ys, average, n_resamples, seed)
    return (point, float(lo[0]), float(hi[0]))


def iqm_curve(
    per_env: Sequence[np.ndarray],
    n_resamples: int | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IQM, low, high) per step of curves on a shared grid, one (runs x steps) array per env:
    rliable's sample-efficiency estimate (its bootstrap resamples runs per env and step).
    No interval (NaN) when no env has two runs."""
    strata = [np.asarray(g, dtype=float)[:, None, :] for g in per_env]  # runs x 1 task x steps
    point = pooled_iqm(*strata)
    if max(s.shape[0] for s in strata) < 2:
        nan = np.full_like(point, math.nan)
        return point, nan, nan.copy()
    return interval(strata, pooled_iqm, n_resamples, seed)
