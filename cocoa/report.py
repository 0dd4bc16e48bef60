"""Reporting: run directories → tables, aggregate scores and learning curves.

Reads only run directories (``config.json``, ``status.json``, ``progress.csv``; see
``cocoa.runs``); never imports training code or torch.

Statistics, stated once here and repeated in every table footer:

* **Score of a run at a budget of B env steps**: the meta-test metric of the *last* row of its
  ``progress.csv`` that has a meta-test and ``env_steps <= B``. A run whose last meta-test lies
  below B has not reached the budget and is left out of its cell (reported as such). The
  default budget is the largest one that every selected run reached, per environment (so a
  table that mixes point robots and Metaworld does not score Metaworld at a point-robot
  budget): on each environment, the smallest over its runs of each run's last meta-test env
  steps. ``--at-steps`` sets one budget for every environment.
* **Cell**: mean over seeds and a 95% percentile-bootstrap confidence interval of that mean
  (10,000 resamples of the seeds with replacement, ``numpy.random.default_rng(0)`` for every
  cell, so tables are reproducible). With one seed there is no interval. With few seeds the
  percentile bootstrap is coarse and tends to be too narrow: 3 seeds have only 10 distinct
  resample means.
* **Aggregate row**: interquartile mean (rliable's ``aggregate_iqm``) of per-environment
  min-max normalised scores: on each environment, every run's score is mapped to [0, 1] by the
  minimum and maximum over all runs of all columns on that environment. Raw returns are not
  comparable across environments, so no aggregate of raw returns is given. Only environments
  where every column has runs count. The interval is a stratified bootstrap (seeds resampled
  within each environment; 2,000 resamples, generator seed 0), as rliable does it.
* **Probability of improvement** of CoCOA over PEARL: rliable's
  ``metrics.probability_of_improvement`` (Mann-Whitney U / (n_x n_y), ties count one half)
  averaged over environments, with the same stratified bootstrap for its interval.

Learning curves align seeds that were evaluated at different env steps by linear
interpolation of each run's meta-test curve onto the union of the evaluation points of the
runs in its group, restricted to the range every run of the group covers (no extrapolation);
a group's curve therefore ends where its shortest run ends, and the plot notes say so.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cocoa.runs import read_json, read_status

METRICS = {"return": "meta_test/return", "success": "meta_test/success"}
METRIC_LABELS = {"return": "meta-test return", "success": "meta-test success rate"}
ALGO_LABELS = {
    "maml-trpo": "MAML",
    "rl2-ppo": "RL2",
    "pearl": "PEARL",
    "cocoa": "CoCOA",
    "oracle-sac": "oracle-SAC",
}
ALGO_ORDER = list(ALGO_LABELS)
SIMILARITY_LABELS = {"bhattacharyya": "Bhattacharyya", "bilinear": "Bilinear"}
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "results" / "reference"
REFERENCE_FILES = {
    "algo": REFERENCE_DIR / "thesis_table_5_1.csv",
    "similarity": REFERENCE_DIR / "thesis_table_5_2.csv",
}
CI_RESAMPLES = 10_000
AGGREGATE_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0
MISSING = "—"


# ------------------------------------------------------------------------------ reading


@dataclass(eq=False)
class Run:
    """One run directory as reporting sees it.

    Attributes:
        path: the run directory.
        env, algo, seed: from ``config.json``.
        similarity: ``algo_config.similarity``; None for algorithms without one and where
            the contrastive term is off (``contrastive_weight == 0``: PEARL), which never
            use it.
        status: ``status.json``'s status (``missing`` when there is none).
        config: the whole ``config.json``.
        progress: ``progress.csv`` (empty frame when the run has not written a row yet).
    """

    path: Path
    env: str
    algo: str
    seed: int
    similarity: str | None
    status: str
    config: dict[str, Any]
    progress: pd.DataFrame = field(repr=False)

    def meta_tests(self, metric: str) -> pd.DataFrame:
        """Rows with a meta-test: columns ``env_steps`` and ``value``, sorted by env steps."""
        column = metric_column(metric)
        if column not in self.progress.columns:
            return pd.DataFrame({"env_steps": [], "value": []})
        rows = self.progress[["env_steps", column]].dropna()
        rows = rows.rename(columns={column: "value"}).sort_values("env_steps", kind="stable")
        return rows.reset_index(drop=True)

    def has_metric(self, metric: str) -> bool:
        """Whether ``progress.csv`` has the metric's column (success: Metaworld families)."""
        return metric_column(metric) in self.progress.columns or self.progress.empty

    def reached(self, metric: str) -> int | None:
        """Env steps of the last meta-test (None without any)."""
        rows = self.meta_tests(metric)
        return None if rows.empty else int(rows["env_steps"].iloc[-1])


def metric_column(metric: str) -> str:
    """``progress.csv`` column of ``metric`` (``return`` or ``success``)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    return METRICS[metric]


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every run directory (a folder with ``config.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"no runs directory at {root}")
    if (root / "config.json").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("config.json") if "checkpoints" not in p.parts)


def _read_progress(path: Path) -> pd.DataFrame:
    """``progress.csv`` as numbers; ``ValueError`` naming the file when it is corrupt."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["iteration", "env_steps", METRICS["return"]])
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"corrupt {path}: {first}") from None
    missing = [c for c in ("iteration", "env_steps", METRICS["return"]) if c not in frame.columns]
    if missing:
        raise ValueError(f"corrupt {path}: no column {', '.join(missing)}")
    for column in frame.columns:
        try:
            frame[column] = pd.to_numeric(frame[column])
        except (ValueError, TypeError):
            raise ValueError(f"corrupt {path}: non-numeric value in column {column!r}") from None
    if frame["env_steps"].isna().any():
        raise ValueError(f"corrupt {path}: a row has no env_steps")
    return frame


def load_run(path: str | Path) -> Run:
    """Reads one run directory; ``ValueError`` with the path when a file is corrupt."""
    path = Path(path)
    config = read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ValueError(f"corrupt {path / 'config.json'}: not a JSON object")
    for key, kind in (("env", str), ("algo", str), ("seed", int)):
        if not isinstance(config.get(key), kind) or isinstance(config.get(key), bool):
            raise ValueError(f"corrupt {path / 'config.json'}: no valid {key!r}")
    algo_config = config.get("algo_config")
    similarity = None
    if isinstance(algo_config, dict) and algo_config.get("contrastive_weight", 1) != 0:
        similarity = algo_config.get("similarity")  # PEARL (no contrastive term) uses none
    return Run(
        path=path,
        env=config["env"],
        algo=config["algo"],
        seed=config["seed"],
        similarity=similarity if isinstance(similarity, str) else None,
        status=str(read_status(path).get("status", "missing")),
        config=config,
        progress=_read_progress(path / "progress.csv"),
    )


def load_runs(
    root: str | Path,
    envs: Sequence[str] | None = None,
    algos: Sequence[str] | None = None,
    similarities: Sequence[str] | None = None,
) -> list[Run]:
    """Every run under ``root`` matching the filters; ``ValueError`` when there is none."""
    dirs = find_run_dirs(root)
    env_set = {normalise_env(e) for e in envs} if envs else None
    runs = []
    for path in dirs:
        run = load_run(path)
        if env_set is not None and normalise_env(run.env) not in env_set:
            continue
        if algos and run.algo not in algos:
            continue
        if similarities and run.similarity not in similarities:
            continue
        runs.append(run)
    if not runs:
        what = [
            f"{name} {', '.join(vals)}"
            for name, vals in (("envs", envs), ("algos", algos), ("similarities", similarities))
            if vals
        ]
        suffix = f" matching {'; '.join(what)}" if what else ""
        raise ValueError(f"no runs found under {root}{suffix}")
    return runs


def normalise_env(name: str) -> str:
    """Comparable env name: lower case, dashes, no ``-vN`` suffix (``Pick-place`` →
    ``pick-place``, ``reach-v3`` → ``reach``)."""
    name = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"-v\d+$", "", name)


# ---------------------------------------------------------------------------- statistics


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


# -------------------------------------------------------------------------------- tables


@dataclass
class Cell:
    """One table cell: mean over seeds with its 95% interval and seed count."""

    mean: float
    low: float
    high: float
    n: int
    best: bool = False


@dataclass
class ComparisonTable:
    """A Table 5.1/5.2-style table, ready to render.

    Attributes:
        metric: ``return`` or ``success``.
        budgets: env -> the env-step budget its scores are taken at.
        by: ``algo`` (columns are algorithms) or ``similarity`` (columns are similarities).
        envs: row order.
        columns: column keys in order; ``labels`` maps them to headers.
        cells: ``(env, column) -> Cell`` (absent: no run).
        n_expected: the largest seed count of any cell.
        reference: ``column -> {env: published value}`` for reference columns.
        aggregate: ``column -> Cell`` of the normalised IQM (``n`` = runs pooled).
        aggregate_envs: envs the aggregate covers.
        improvement: ``(x, y, p, low, high)`` probability-of-improvement rows.
        scores: long form of every used score: env, column, seed, value, env_steps, run.
        notes: footer lines (budget, method, missing and partial data).
    """

    metric: str
    budgets: dict[str, int]
    by: str
    envs: list[str]
    columns: list[str]
    labels: dict[str, str]
    cells: dict[tuple[str, str], Cell]
    n_expected: int
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    aggregate: dict[str, Cell] = field(default_factory=dict)
    aggregate_envs: list[str] = field(default_factory=list)
    improvement: list[tuple[str, str, float, float, float]] = field(default_factory=list)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def budget(self) -> int | None:
        """The budget when every env has the same one, else None."""
        values = set(self.budgets.values())
        return values.pop() if len(values) == 1 else None

    def wins(self, a: str, b: str) -> tuple[int, int, int]:
        """(envs where column ``a``'s mean beats ``b``'s, ties, envs where both have a mean)."""
        k = ties = n = 0
        for env in self.envs:
            ca, cb = self.cells.get((env, a)), self.cells.get((env, b))
            if ca is None or cb is None:
                continue
            n += 1
            k += ca.mean > cb.mean
            ties += ca.mean == cb.mean
        return k, ties, n

    def win_lines(self, pairs: Sequence[tuple[str, str]] | None = None) -> list[str]:
        """``"X beats Y on k out of N envs"`` per pair of columns (default: every pair), the
        column that wins more often first; N counts envs where both have runs."""
        if pairs is None:
            pairs = [(a, b) for i, a in enumerate(self.columns) for b in self.columns[i + 1 :]]
        lines = []
        for a, b in pairs:
            k, ties, n = self.wins(a, b)
            if n == 0:
                continue
            if n - k - ties > k:
                a, b, k = b, a, n - k - ties
            rest = n - k - ties
            tie = f", {ties} tied" if ties else ""
            lines.append(
                f"{self.labels[a]} beats {self.labels[b]} on {k} out of {n} envs "
                f"({self.labels[b]} wins {rest}{tie})"
            )
        return lines

    def best_counts(self) -> dict[str, int]:
        """How many rows each column is best (or tied best) in."""
        return {
            c: sum(self.cells[e, c].best for e in self.envs if (e, c) in self.cells)
            for c in self.columns
        }


def column_key(run: Run, by: str, split_similarity: Sequence[str] = ()) -> str:
    """The column a run belongs to: its algorithm (``algo:similarity`` for algorithms in
    ``split_similarity``) or, with ``by="similarity"``, its similarity."""
    if by == "similarity":
        return run.similarity or "none"
    if run.algo in split_similarity and run.similarity:
        return f"{run.algo}:{run.similarity}"
    return run.algo


def column_label(key: str, by: str) -> str:
    """Header text of a column key (``cocoa`` → ``CoCOA``, ``cocoa:bilinear`` → ``CoCOA
    (bilinear)``, ``bilinear`` → ``Bilinear`` in an ablation)."""
    if by == "similarity":
        return SIMILARITY_LABELS.get(key, key)
    algo, _, sim = key.partition(":")
    label = ALGO_LABELS.get(algo, algo)
    return f"{label} ({sim})" if sim else label


def _order(keys: Iterable[str], by: str, requested: Sequence[str] | None) -> list[str]:
    """Column order: the requested one (an algorithm's split columns take its place), else
    the thesis's (MAML, RL2, PEARL, CoCOA, oracle-SAC; Bhattacharyya, Bilinear); others
    follow alphabetically."""
    keys = set(keys)
    if requested:
        out: list[str] = []
        for k in requested:
            split = [x for x in keys if ":" in x and x.partition(":")[0] == k]
            out.extend(sorted(split) or [k])
        return out + sorted(keys - set(out))
    if by == "algo":
        rank = {a: i for i, a in enumerate(ALGO_ORDER)}
        return sorted(keys, key=lambda k: (rank.get(k.partition(":")[0], 99), k))
    rank = {s: i for i, s in enumerate(SIMILARITY_LABELS)}
    return sorted(keys, key=lambda k: (rank.get(k, 99), k))


def read_reference(path: str | Path) -> pd.DataFrame:
    """A reference table (``results/reference/*.csv``): index = normalised env name,
    columns = algorithm or similarity names; ``ValueError`` when unreadable."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"no reference table at {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise ValueError(f"corrupt reference table {path}: {exc}") from None
    if "env" not in frame.columns:
        raise ValueError(f"corrupt reference table {path}: no 'env' column")
    frame["env"] = frame["env"].map(normalise_env)
    return frame.drop(columns=[c for c in ("thesis_name",) if c in frame.columns]).set_index("env")


def _split_algos(runs: Sequence[Run], by: str) -> list[str]:
    """Algorithms whose runs use more than one similarity: their columns split by it."""
    if by != "algo":
        return []
    sims: dict[str, set[str]] = {}
    for r in runs:
        if r.similarity:
            sims.setdefault(r.algo, set()).add(r.similarity)
    return sorted(a for a, s in sims.items() if len(s) > 1)


def _deduplicate(
    runs: Sequence[Run], by: str, metric: str, notes: list[str]
) -> tuple[list[Run], list[str]]:
    """One run per (env, column, seed), the one that got furthest, then a finished one
    (e.g. ``cocoa/seed0`` beside an ablation's ``cocoa/bhattacharyya-seed0``); the ignored
    ones go into ``notes``. Returns (runs, algorithms split by similarity)."""
    split = _split_algos(runs, by)
    seen: dict[tuple[str, str, int], Run] = {}
    duplicates = []

    def preference(r: Run) -> tuple:
        return (-(r.reached(metric) or 0), r.status != "finished", str(r.path))

    for r in sorted(runs, key=preference):
        slot = (r.env, column_key(r, by, split), r.seed)
        if slot in seen:
            duplicates.append(f"{r.path} (kept {seen[slot].path.name})")
        else:
            seen[slot] = r
    if duplicates:
        notes.append(
            f"ignored {len(duplicates)} duplicate run(s) of an env, column and seed that "
            f"another run covers (kept the one that got furthest): {', '.join(sorted(duplicates))}"
        )
    return sorted(seen.values(), key=lambda r: str(r.path)), split


def _config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two config dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _config_diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _fmt_steps(steps: float) -> str:
    return f"{int(steps):,}"


def _usable(runs: Sequence[Run], by: str, metric: str, notes: list[str]) -> list[Run]:
    """Runs that can enter the table; what is left out and why goes into ``notes``."""
    runs = list(runs)
    if by == "similarity":
        without = [r for r in runs if r.similarity is None]
        runs = [r for r in runs if r.similarity is not None]
        if without:
            notes.append(
                f"ignored {len(without)} run(s) without a similarity "
                f"({', '.join(sorted({r.algo for r in without}))})"
            )
    no_metric = sorted({r.env for r in runs if not r.has_metric(metric)})
    if no_metric:
        notes.append(f"no {METRIC_LABELS[metric]} recorded for: {', '.join(no_metric)}")
        runs = [r for r in runs if r.has_metric(metric)]
    if not runs:
        raise ValueError(f"no runs with {METRIC_LABELS[metric]} to tabulate")
    for r in runs:
        if r.reached(metric) is None:
            notes.append(f"no meta-test yet (status {r.status}): {r.path}")
    runs = [r for r in runs if r.reached(metric) is not None]
    if not runs:
        raise ValueError("no run has a meta-test yet")
    return runs


def _budgets(
    runs: Sequence[Run], metric: str, budget: int | None, notes: list[str]
) -> dict[str, int]:
    """env -> budget: ``budget`` everywhere, or per env the largest every run reached."""
    rule = "each run contributes its last meta-test at <= the budget"
    if budget is not None:
        if budget < 0:
            raise ValueError(f"--at-steps must be >= 0, got {budget}")
        notes.append(
            f"budget: {_fmt_steps(budget)} env steps; {rule}; runs that stopped earlier "
            "are left out"
        )
        return {r.env: budget for r in runs}
    budgets: dict[str, int] = {}
    limiting: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: str(r.path)):
        if r.env not in budgets or r.reached(metric) < budgets[r.env]:
            budgets[r.env], limiting[r.env] = int(r.reached(metric)), r
    by_value: dict[int, list[str]] = {}
    for env, b in sorted(budgets.items()):
        by_value.setdefault(b, []).append(env)
    ordered = sorted(by_value.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    text = f"budget: {_fmt_steps(ordered[0][0])} env steps"
    if len(ordered) > 1:
        text += f" on {', '.join(ordered[0][1])}; " + "; ".join(
            f"{_fmt_steps(b)} on {', '.join(e)}" for b, e in ordered[1:]
        )
    notes.append(f"{text} (per env, the largest every run of the env reached); {rule}")
    for env, r in sorted(limiting.items()):
        if r.status != "finished":
            notes.append(
                f"budget on {env} limited by an unfinished run (status {r.status}, last "
                f"meta-test at {_fmt_steps(budgets[env])}): {r.path}"
            )
    return budgets


def _scores(
    runs: Sequence[Run],
    metric: str,
    budgets: dict[str, int],
    keys: dict[Path, str],
    notes: list[str],
) -> pd.DataFrame:
    """One row per run that reached its env's budget: env, column, seed, value, env_steps,
    run, config."""
    records = []
    for r in runs:
        if r.status != "finished":
            notes.append(f"run not finished (status {r.status}): {r.path}")
        rows = r.meta_tests(metric)
        budget = budgets[r.env]
        if rows["env_steps"].iloc[-1] < budget:
            notes.append(
                f"did not reach {_fmt_steps(budget)} env steps "
                f"(last meta-test at {_fmt_steps(rows['env_steps'].iloc[-1])}): {r.path}"
            )
            continue
        rows = rows[rows["env_steps"] <= budget]
        if rows.empty:
            notes.append(f"no meta-test at <= {_fmt_steps(budget)} env steps: {r.path}")
            continue
        records.append(
            {
                "env": r.env,
                "column": keys[r.path],
                "seed": r.seed,
                "value": float(rows["value"].iloc[-1]),
                "env_steps": int(rows["env_steps"].iloc[-1]),
                "run": str(r.path),
                "config": r.config,
            }
        )
    columns = ["env", "column", "seed", "value", "env_steps", "run", "config"]
    return pd.DataFrame(records, columns=columns)


def _cells(
    scores: pd.DataFrame, labels: dict[str, str], notes: list[str]
) -> dict[tuple[str, str], Cell]:
    """Mean and bootstrap interval per (env, column); pooled configs that differ are noted."""
    cells: dict[tuple[str, str], Cell] = {}
    for (env, key), group in scores.groupby(["env", "column"], sort=False):
        lo, hi = bootstrap_ci(group["value"])
        cells[env, key] = Cell(float(group["value"].mean()), lo, hi, len(group))
        configs = list(group["config"])
        diff = sorted({d for c in configs[1:] for d in _config_diff(configs[0], c)} - {"seed"})
        if diff:
            notes.append(
                f"{labels[key]} on {env} pools runs whose configs differ in: {', '.join(diff)}"
            )
    for env, group_steps in scores.groupby("env")["env_steps"]:
        lo_s, hi_s = group_steps.min(), group_steps.max()
        if lo_s != hi_s:  # runs evaluated at different steps: say which ones were used
            notes.append(
                f"meta-tests used on {env} lie at {_fmt_steps(lo_s)}-{_fmt_steps(hi_s)} env steps"
            )
    return cells


def _mark_best_and_count(table: ComparisonTable) -> None:
    """Marks the best mean per row; notes best counts, win counts, missing and partial
    cells."""
    cells, keys, labels, notes = table.cells, table.columns, table.labels, table.notes
    for env in table.envs:
        present = [cells[env, k] for k in keys if (env, k) in cells]
        if len(present) >= 2:
            top = max(c.mean for c in present)
            for c in present:
                c.best = c.mean == top
    contested = [e for e in table.envs if sum((e, k) in cells for k in keys) >= 2]
    if contested and len(keys) > 2:
        counts = table.best_counts()
        notes.append(
            "best (or tied best) mean: "
            + ", ".join(f"{labels[k]} {counts[k]}" for k in keys)
            + f" of {len(contested)} envs"
        )
    if table.by == "similarity":
        notes += table.win_lines()
    else:
        cocoa_cols = {k for k in keys if k.partition(":")[0] == "cocoa"}
        pairs = [  # CoCOA first, as the thesis counts it
            (b, a) if b in cocoa_cols and a not in cocoa_cols else (a, b)
            for i, a in enumerate(keys)
            for b in keys[i + 1 :]
            if a in cocoa_cols or b in cocoa_cols
        ]
        notes += table.win_lines(pairs)
    missing = [f"{labels[k]} on {e}" for e in table.envs for k in keys if (e, k) not in cells]
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    partial = [
        f"{labels[k]} on {e} ({cells[e, k].n}/{table.n_expected})"
        for e in table.envs
        for k in keys
        if (e, k) in cells and cells[e, k].n < table.n_expected
    ]
    if partial:
        notes.append(f"fewer seeds: {', '.join(partial)}")


def build_table(
    runs: Sequence[Run],
    metric: str = "return",
    budget: int | None = None,
    by: str = "algo",
    envs: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    reference: pd.DataFrame | None = None,
) -> ComparisonTable:
    """Builds the comparison table of ``runs``.

    Args:
        runs: loaded runs (``load_runs``).
        metric: ``return`` or ``success``.
        budget: env-step budget for every env; None takes, per env, the largest budget
            every run of the env reached.
        by: ``algo`` or ``similarity`` (ablation: runs without a similarity are ignored).
        envs, columns: rows and columns to show (requested ones without runs show ``—``).
        reference: published numbers (``read_reference``) to put beside ours.
    """
    metric_column(metric)
    if by not in ("algo", "similarity"):
        raise ValueError(f"unknown table grouping {by!r}; choose algo or similarity")
    budget_notes: list[str] = []
    notes: list[str] = []
    runs = _usable(runs, by, metric, notes)
    runs, split = _deduplicate(runs, by, metric, notes)
    budgets = _budgets(runs, metric, budget, budget_notes)
    keys = {r.path: column_key(r, by, split) for r in runs}
    scores = _scores(runs, metric, budgets, keys, notes)

    env_order = [normalise_env(e) for e in envs] if envs else sorted({r.env for r in runs})
    env_order += sorted(set(scores["env"]) - set(env_order))
    col_keys = _order(set(keys.values()), by, columns)
    labels = {k: column_label(k, by) for k in col_keys}
    cells = _cells(scores, labels, notes)
    table = ComparisonTable(
        metric=metric,
        budgets=budgets,
        by=by,
        envs=env_order,
        columns=col_keys,
        labels=labels,
        cells=cells,
        n_expected=max((c.n for c in cells.values()), default=0),
        scores=scores.drop(columns=["config"]),
        notes=budget_notes + notes,
    )
    _mark_best_and_count(table)
    _add_aggregates(table)
    if reference is not None:
        _add_reference(table, reference)
    return table


def _add_aggregates(table: ComparisonTable) -> None:
    """Normalised IQM per column and probability of improvement of CoCOA over PEARL."""
    scores = table.scores
    cols = [c for c in table.columns if any((e, c) in table.cells for e in table.envs)]
    if len(cols) < 2:
        return
    envs = [e for e in table.envs if all((e, c) in table.cells for c in cols)]
    if not envs:
        table.notes.append("no aggregate: no env has runs of every column")
        return
    flat = []
    for env in envs:
        values = scores.loc[scores["env"] == env, "value"]
        lo, hi = values.min(), values.max()
        if hi == lo:
            flat.append(env)
    envs = [e for e in envs if e not in flat]
    if flat:
        table.notes.append(f"left out of the aggregate (all scores equal): {', '.join(flat)}")
    if not envs:
        return
    per_col: dict[str, list[np.ndarray]] = {c: [] for c in cols}
    raw: dict[str, list[np.ndarray]] = {c: [] for c in cols}
    for env in envs:
        sub = scores[scores["env"] == env]
        lo, hi = sub["value"].min(), sub["value"].max()
        for c in cols:
            values = sub.loc[sub["column"] == c, "value"].to_numpy(dtype=float)
            raw[c].append(values)
            per_col[c].append((values - lo) / (hi - lo))
    for c in cols:
        point, lo, hi = iqm_with_ci(per_col[c])
        table.aggregate[c] = Cell(point, lo, hi, int(sum(v.size for v in per_col[c])))
    top = max(cell.mean for cell in table.aggregate.values())
    for cell in table.aggregate.values():
        cell.best = cell.mean == top
    table.aggregate_envs = envs
    table.notes.append(
        f"IQM: interquartile mean over {len(envs)} env(s) x seeds of scores min-max "
        "normalised per env over all runs shown (0 = worst run, 1 = best run on that env), "
        "95% stratified-bootstrap CI"
    )
    if table.by == "algo":
        pearl = [c for c in cols if c == "pearl"]
        for x in [c for c in cols if c.partition(":")[0] == "cocoa"]:
            for y in pearl:
                p, lo, hi = probability_of_improvement(raw[x], raw[y])
                table.improvement.append((x, y, p, lo, hi))
                table.notes.append(
                    f"probability of improvement P({table.labels[x]} > {table.labels[y]}) = "
                    f"{p:.2f} [{lo:.2f}, {hi:.2f}] over {len(envs)} env(s) (rliable)"
                )


def _add_reference(table: ComparisonTable, reference: pd.DataFrame) -> None:
    """Published numbers for the columns the reference has, matched by env name (returns
    only: the thesis publishes no success rates)."""
    if table.metric != "return":
        table.notes.append("reference: the published tables hold returns, not success rates")
        return
    shown = []
    for key in table.columns:
        base = key if table.by == "similarity" else key.partition(":")[0]
        if base in reference.columns and base not in shown:
            shown.append(base)
            table.reference[key] = {
                env: float(reference.at[env, base])
                for env in table.envs
                if env in reference.index and pd.notna(reference.at[env, base])
            }
    if not table.reference:
        table.notes.append("reference: no column of the published table matches")
        return
    unmatched = [e for e in table.envs if e not in reference.index]
    if unmatched:
        table.notes.append(f"no published numbers for: {', '.join(unmatched)}")
    table.notes.append(
        "(thesis) columns: published means at 2.5M env steps over 3 seeds "
        "(results/reference); not part of the best-per-row marking"
    )


# ----------------------------------------------------------------------------- rendering


def _num(x: float, metric: str) -> str:
    if math.isnan(x):
        return "nan"
    if metric == "success":
        return f"{x:.2f}"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.2f}"


def _cell_parts(cell: Cell, table: ComparisonTable, aggregate: bool = False) -> tuple[str, str]:
    """(mean text, interval + seed-count text)."""
    metric = "success" if aggregate else table.metric
    mean = _num(cell.mean, metric)
    extra = ""
    if not math.isnan(cell.low):
        extra = f"[{_num(cell.low, metric)}, {_num(cell.high, metric)}]"
    if not aggregate and cell.n < table.n_expected:
        extra = (extra + " " if extra else "") + f"(n={cell.n}/{table.n_expected})"
    return mean, extra


def _header(table: ComparisonTable) -> list[tuple[str, str | None]]:
    """(header text, column key or None for a reference column) in display order."""
    out: list[tuple[str, str | None]] = []
    for key in table.columns:
        out.append((table.labels[key], key))
        if key in table.reference:
            out.append((f"{table.labels[key].split(' (')[0]} (thesis)", "ref:" + key))
    return out


def caption(table: ComparisonTable) -> str:
    """One-line description of what the cells hold."""
    seeds = f"{table.n_expected} seed" + ("s" if table.n_expected != 1 else "")
    at = (
        f"{_fmt_steps(table.budget)} env steps"
        if table.budget is not None
        else "each env's budget (see notes)"
    )
    return (
        f"{METRIC_LABELS[table.metric].capitalize()} at {at}: "
        f"mean [95% bootstrap CI] across seeds ({seeds}); best (unrounded) mean per row in bold."
    )


def render_markdown(table: ComparisonTable) -> str:
    """GitHub Markdown: caption line, table (best in bold), aggregate row, notes."""
    header = _header(table)
    lines = [caption(table), ""]
    lines.append("| environment | " + " | ".join(h for h, _ in header) + " |")
    lines.append("|---|" + "---:|" * len(header))

    def row(name: str, getter) -> str:
        return f"| {name} | " + " | ".join(getter(key) for _, key in header) + " |"

    def cell_text(env: str, key: str | None) -> str:
        if key.startswith("ref:"):
            value = table.reference[key[4:]].get(env)
            return MISSING if value is None else _num(value, table.metric)
        cell = table.cells.get((env, key))
        if cell is None:
            return MISSING
        mean, extra = _cell_parts(cell, table)
        mean = f"**{mean}**" if cell.best else mean
        return f"{mean} {extra}".strip()

    for env in table.envs:
        lines.append(row(env, lambda key, env=env: cell_text(env, key)))
    if table.aggregate:

        def agg_text(key: str) -> str:
            cell = table.aggregate.get(key) if not key.startswith("ref:") else None
            if cell is None:
                return ""
            mean, extra = _cell_parts(cell, table, aggregate=True)
            return f"{'**' + mean + '**' if cell.best else mean} {extra}".strip()

        lines.append(row("IQM (normalised)", agg_text))
    lines.append("")
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text).replace("—", "---")


def render_latex(table: ComparisonTable) -> str:
    """A booktabs ``table``: best in bold, intervals in small type, notes as comments."""
    header = _header(table)

    def cell_text(env: str, key: str) -> str:
        if key.startswith("ref:"):
            value = table.reference[key[4:]].get(env)
            return "---" if value is None else _num(value, table.metric)
        cell = table.cells.get((env, key))
        if cell is None:
            return "---"
        mean, extra = _cell_parts(cell, table)
        mean = f"\\textbf{{{mean}}}" if cell.best else mean
        return f"{mean} {{\\scriptsize {extra}}}" if extra else mean

    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\begin{tabular}{l" + "r" * len(header) + "}",
        "\\toprule",
        "Environment & " + " & ".join(_latex_escape(h) for h, _ in header) + " \\\\",
        "\\midrule",
    ]
    for env in table.envs:
        lines.append(
            _latex_escape(env) + " & " + " & ".join(cell_text(env, k) for _, k in header) + r" \\"
        )
    if table.aggregate:
        parts = []
        for _, key in header:
            cell = table.aggregate.get(key)
            if cell is None:
                parts.append("")
                continue
            mean, extra = _cell_parts(cell, table, aggregate=True)
            mean = f"\\textbf{{{mean}}}" if cell.best else mean
            parts.append(f"{mean} {{\\scriptsize {extra}}}" if extra else mean)
        lines += ["\\midrule", "IQM (normalised) & " + " & ".join(parts) + r" \\"]
    lines += [
        "\\bottomrule",
        "\\end{tabular}",
        f"\\caption{{{_latex_escape(caption(table))}}}",
        "\\end{table}",
    ]
    lines += [f"% {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def render_csv(table: ComparisonTable) -> str:
    """One row per env (plus ``IQM (normalised)``): per column ``mean``, ``ci_low``,
    ``ci_high``, ``n`` and ``best`` (``*`` when best in the row); reference columns hold the
    published value. Empty fields: no data. Notes are not part of the CSV."""
    header = _header(table)
    fields = ["env"]
    for head, key in header:
        if key.startswith("ref:"):
            fields.append(head)
        else:
            fields += [f"{head} {s}" for s in ("mean", "ci_low", "ci_high", "n", "best")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)

    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(float(x))

    def values(cell: Cell | None) -> list[str]:
        if cell is None:
            return ["", "", "", "", ""]
        return [num(cell.mean), num(cell.low), num(cell.high), str(cell.n), "*" * cell.best]

    for env in table.envs:
        row = [env]
        for _, key in header:
            if key.startswith("ref:"):
                value = table.reference[key[4:]].get(env)
                row.append("" if value is None else repr(value))
            else:
                row += values(table.cells.get((env, key)))
        writer.writerow(row)
    if table.aggregate:
        row = ["IQM (normalised)"]
        for _, key in header:
            row += [""] if key.startswith("ref:") else values(table.aggregate.get(key))
        writer.writerow(row)
    return buf.getvalue()


def render(table: ComparisonTable, fmt: str) -> str:
    """``markdown``, ``latex`` or ``csv``."""
    renderers = {"markdown": render_markdown, "latex": render_latex, "csv": render_csv}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(renderers)}")
    return renderers[fmt](table)


# ------------------------------------------------------------------------------ curves


def learning_curves(
    runs: Sequence[Run], metric: str = "return", hue: str = "algo"
) -> tuple[pd.DataFrame, list[str]]:
    """Seed-aligned curves: (long frame with env, hue, seed, run, env_steps, value; notes).

    Each (env, hue) group's runs are linearly interpolated onto the union of their meta-test
    env steps inside the range all of them cover, so every plotted point averages every seed
    of its group and nothing is extrapolated.
    """
    metric_column(metric)
    by = "similarity" if hue == "similarity" else "algo"
    if hue not in ("algo", "similarity"):
        raise ValueError(f"unknown hue {hue!r}; choose algo or similarity")
    notes: list[str] = []
    runs = [r for r in runs if by == "algo" or r.similarity is not None]
    no_metric = sorted({r.env for r in runs if not r.has_metric(metric)})
    if no_metric:
        notes.append(f"no {METRIC_LABELS[metric]} recorded for: {', '.join(no_metric)}")
    runs = [r for r in runs if r.has_metric(metric)]
    for r in runs:
        if r.reached(metric) is None:
            notes.append(f"no meta-test yet (status {r.status}): {r.path}")
    runs, split = _deduplicate(
        [r for r in runs if r.reached(metric) is not None], by, metric, notes
    )
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.env, column_label(column_key(r, by, split), by)), []).append(r)
    if not groups:
        raise ValueError(f"no run has a {METRIC_LABELS[metric]} to plot")
    frames = []
    for (env, label), members in sorted(groups.items()):
        curves = [r.meta_tests(metric) for r in members]
        start = max(float(c["env_steps"].iloc[0]) for c in curves)
        end = min(float(c["env_steps"].iloc[-1]) for c in curves)
        longest = max(float(c["env_steps"].iloc[-1]) for c in curves)
        if end < longest:
            short = min(members, key=lambda r: r.reached(metric))
            notes.append(
                f"{label} on {env}: curve ends at {_fmt_steps(end)} env steps, where its "
                f"shortest run ends ({short.path}, status {short.status})"
            )
        grid = np.unique(np.concatenate([c["env_steps"].to_numpy(float) for c in curves]))
        grid = grid[(grid >= start) & (grid <= end)]
        for r, c in zip(members, curves, strict=True):
            xs = c["env_steps"].to_numpy(float)
            ys = c["value"].to_numpy(float)
            xs, idx = np.unique(xs, return_index=True)
            frames.append(
                pd.DataFrame(
                    {
                        "env": env,
                        "hue": label,
                        "seed": r.seed,
                        "run": str(r.path),
                        "env_steps": grid,
                        "value": np.interp(grid, xs, ys[idx]),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), notes


def online_curves(runs: Sequence[Run], hue: str = "algo") -> tuple[pd.DataFrame, list[str]]:
    """PEARL-protocol online curves: (long frame with env, hue, seed, run, trajectory, value;
    notes), from each run's last meta-test that kept one (``evals/*.json`` with
    ``online_returns``: runs meta-tested under ``--protocol pearl``)."""
    by = "similarity" if hue == "similarity" else "algo"
    notes: list[str] = []
    rows = []
    for r in runs:
        if by == "similarity" and r.similarity is None:
            continue
        evals = sorted((r.path / "evals").glob("*.json"))
        record = None
        for path in reversed(evals):
            data = read_json(path)
            if isinstance(data, dict) and isinstance(data.get("online_returns"), list):
                record = data
                break
        if record is None:
            notes.append(f"no online curve (not meta-tested under --protocol pearl): {r.path}")
            continue
        label = column_label(column_key(r, by), by)
        for k, value in enumerate(record["online_returns"], start=1):
            rows.append(
                {
                    "env": r.env,
                    "hue": label,
                    "seed": r.seed,
                    "run": str(r.path),
                    "trajectory": k,
                    "value": float(value),
                    "at_steps": int(record.get("env_steps", 0)),
                }
            )
    if not rows:
        raise ValueError(
            "no run has an online curve; meta-train or meta-test with --protocol pearl"
        )
    frame = pd.DataFrame(rows)
    for (env, label), group in frame.groupby(["env", "hue"]):
        steps = sorted(set(group["at_steps"]))
        if len(steps) > 1:
            notes.append(
                f"{label} on {env}: seeds' last online curves are at different env steps "
                f"({', '.join(_fmt_steps(s) for s in steps)})"
            )
    return frame, notes


def _steps_formatter(value: float, _pos: int) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def plot_learning_curves(
    runs: Sequence[Run],
    output: str | Path,
    metric: str = "return",
    hue: str = "algo",
    envs: Sequence[str] | None = None,
    online: bool = False,
) -> tuple[list[Path], list[str]]:
    """Draws one panel per env (mean and 95% bootstrap CI band across seeds, seaborn) and
    writes ``<stem>.png`` and ``<stem>.pdf``; returns (written paths, notes).

    ``online``: PEARL's online curve instead (return by trajectory index of the last
    ``pearl``-protocol meta-test, see ``online_curves``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import FuncFormatter

    output = Path(output)
    if output.suffix.lower() not in ("", ".png", ".pdf"):
        raise ValueError(f"--output must end in .png or .pdf (both are written), got {output}")
    stem = output.with_suffix("") if output.suffix else output
    if online:
        data, notes = online_curves(runs, hue)
        x, xlabel, ylabel = "trajectory", "trajectory (PEARL protocol)", METRIC_LABELS["return"]
    else:
        data, notes = learning_curves(runs, metric, hue)
        x, xlabel, ylabel = "env_steps", "environment steps", METRIC_LABELS[metric]
    env_order = [normalise_env(e) for e in envs] if envs else sorted(set(data["env"]))
    env_order = [e for e in env_order if e in set(data["env"])] + sorted(
        set(data["env"]) - set(env_order)
    )
    labels = list(dict.fromkeys(data["hue"]))
    rank = {column_label(a, "algo"): i for i, a in enumerate(ALGO_ORDER)}
    rank.update({column_label(s, "similarity"): i for i, s in enumerate(SIMILARITY_LABELS)})
    hue_order = sorted(labels, key=lambda h: (rank.get(h, 99), h))

    seeds = data.groupby(["env", "hue"])["seed"].nunique()
    titles = {}
    for env in env_order:
        counts = seeds.loc[env]
        if counts.nunique() == 1:
            n = int(counts.iloc[0])
            titles[env] = f"{env} ({n} seed{'s' if n != 1 else ''})"
        else:
            titles[env] = (
                f"{env} (seeds: "
                + ", ".join(f"{h} {int(counts[h])}" for h in hue_order if h in counts.index)
                + ")"
            )

    sns.set_theme(style="whitegrid", context="notebook")
    ncols = min(len(env_order), 3)
    grid = sns.relplot(
        data=data,
        x=x,
        y="value",
        hue="hue",
        hue_order=hue_order,
        style="hue",  # dashes too: curves that coincide stay distinguishable
        style_order=hue_order,
        col="env",
        col_order=env_order,
        col_wrap=ncols if len(env_order) > 1 else None,
        kind="line",
        errorbar=("ci", 95),
        n_boot=1000,
        seed=BOOTSTRAP_SEED,
        height=3.4,
        aspect=1.3,
        linewidth=2,
        facet_kws={"sharey": False, "sharex": False},
    )
    grid.set_axis_labels(xlabel, ylabel)
    for env, ax in grid.axes_dict.items():
        ax.set_title(titles[env])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)  # every panel: y scales differ across envs
        if online:
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
        if metric == "success" and not online:
            ax.set_ylim(-0.02, 1.02)
    legend_title = "similarity" if hue == "similarity" else "algorithm"
    sns.move_legend(
        grid,
        "lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(hue_order), 5),
        title=f"{legend_title} (mean and 95% CI across seeds)",
        frameon=False,
    )
    grid.figure.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        grid.figure.savefig(path, dpi=150, bbox_inches="tight")
        written.append(path)
    plt.close(grid.figure)
    return written, notes
