"""Comparison tables (thesis Tables 5.1 and 5.2): runs → scores at a budget → cells.

Columns group runs by algorithm (``by="algo"``) or by their value on an axis of the
contrastive design space (``by="objective"``, ``"augment"`` or ``"similarity"``: an ablation,
thesis Table 5.2); ``column_key`` and ``column_label`` are the grouping, ``_order`` its column
order. ``build_table`` picks usable runs, removes duplicates, sets the budget per env,
scores each run, and adds the normalised aggregate and the published numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cocoa.report.runs import (
    AXES,
    METRIC_LABELS,
    REFERENCE_DIR,
    Run,
    fmt_steps,
    metric_column,
    normalise_env,
    reward_version_by_env,
)
from cocoa.report.stats import bootstrap_ci, iqm_with_ci, probability_of_improvement

ALGO_LABELS = {
    "maml-trpo": "MAML",
    "rl2-ppo": "RL2",
    "pearl": "PEARL",
    "cocoa": "CoCOA",
    "oracle-sac": "oracle-SAC",
}
ALGO_ORDER = list(ALGO_LABELS)
SIMILARITY_LABELS = {"bhattacharyya": "Bhattacharyya", "bilinear": "Bilinear"}
#: Column headers of an ablation per axis (other values are their own header).
AXIS_LABELS = {"similarity": SIMILARITY_LABELS, "objective": {"none": "none (PEARL)"}}
#: Column order of an ablation per axis when none is requested (others follow alphabetically).
AXIS_ORDER = {
    "similarity": list(SIMILARITY_LABELS),
    "objective": ["trajectory", "transition", "masked", "predictive-cpc", "predictive-spr", "none"],
    "augment": ["crop"],
}
#: What a run without a value on the axis lacks, for the note that ignores it.
AXIS_NOUNS = {
    "similarity": "a similarity",
    "objective": "a context objective",
    "augment": "augmentations that act",
}
REFERENCE_FILES = {
    "algo": REFERENCE_DIR / "thesis_table_5_1.csv",
    "similarity": REFERENCE_DIR / "thesis_table_5_2.csv",
}


@dataclass
class Cell:
    """One table cell: mean over seeds with its 95% interval and seed count."""

    mean: float
    low: float
    high: float
    n: int
    best: bool = False


@dataclass
class Ranking:
    """Who has the higher mean on one env, here and in the thesis: column ``a`` or ``b``,
    ``tie``, or None (no runs or no published number)."""

    env: str
    a: str
    b: str
    ours: str | None
    thesis: str | None


@dataclass
class ComparisonTable:
    """A Table 5.1/5.2-style table, ready to render.

    Attributes:
        metric: ``return`` or ``success``.
        budgets: env -> the env-step budget its scores are taken at.
        by: ``algo`` (columns are algorithms) or an axis of ``AXES`` (columns are its values:
            objectives, augmentations or similarities).
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
        reward_versions: env -> Metaworld reward version of its runs (Metaworld envs only).
        rankings: per Metaworld-v2 env and column pair, the winner here and in the thesis
            (``--reference``; values on different reward scales are not compared).
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
    reward_versions: dict[str, str] = field(default_factory=dict)
    rankings: list[Ranking] = field(default_factory=list)

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
    ``split_similarity``) or, with ``by`` an axis (``objective``, ``augment``,
    ``similarity``), its value on it."""
    if by in AXES:
        return run.axis_value(by) or "none"
    if run.algo in split_similarity and run.similarity:
        return f"{run.algo}:{run.similarity}"
    return run.algo


def column_label(key: str, by: str) -> str:
    """Header text of a column key (``cocoa`` → ``CoCOA``, ``cocoa:bilinear`` → ``CoCOA
    (bilinear)``, ``bilinear`` → ``Bilinear`` in an ablation)."""
    if by in AXES:
        return AXIS_LABELS.get(by, {}).get(key, key)
    algo, _, sim = key.partition(":")
    label = ALGO_LABELS.get(algo, algo)
    return f"{label} ({sim})" if sim else label


def _order(keys: Iterable[str], by: str, requested: Sequence[str] | None) -> list[str]:
    """Column order: the requested one (an algorithm's split columns take its place), else
    the thesis's (MAML, RL2, PEARL, CoCOA, oracle-SAC; Bhattacharyya, Bilinear; ``AXIS_ORDER``
    for the other axes); others follow alphabetically."""
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
    rank = {s: i for i, s in enumerate(AXIS_ORDER.get(by, []))}
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


def deduplicate(
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


def _usable(runs: Sequence[Run], by: str, metric: str, notes: list[str]) -> list[Run]:
    """Runs that can enter the table; what is left out and why goes into ``notes``."""
    runs = list(runs)
    if by in AXES:
        without = [r for r in runs if r.axis_value(by) is None]
        runs = [r for r in runs if r.axis_value(by) is not None]
        if without:
            notes.append(
                f"ignored {len(without)} run(s) without {AXIS_NOUNS[by]} "
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
            f"budget: {fmt_steps(budget)} env steps; {rule}; runs that stopped earlier are left out"
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
    text = f"budget: {fmt_steps(ordered[0][0])} env steps"
    if len(ordered) > 1:
        text += f" on {', '.join(ordered[0][1])}; " + "; ".join(
            f"{fmt_steps(b)} on {', '.join(e)}" for b, e in ordered[1:]
        )
    notes.append(f"{text} (per env, the largest every run of the env reached); {rule}")
    for env, r in sorted(limiting.items()):
        if r.status != "finished":
            notes.append(
                f"budget on {env} limited by an unfinished run (status {r.status}, last "
                f"meta-test at {fmt_steps(budgets[env])}): {r.path}"
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
                f"did not reach {fmt_steps(budget)} env steps "
                f"(last meta-test at {fmt_steps(rows['env_steps'].iloc[-1])}): {r.path}"
            )
            continue
        rows = rows[rows["env_steps"] <= budget]
        if rows.empty:
            notes.append(f"no meta-test at <= {fmt_steps(budget)} env steps: {r.path}")
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
    single = [f"{labels[k]} on {e}" for (e, k), c in cells.items() if c.n == 1]
    if single:
        notes.append(f"one seed, so no interval (nothing to resample): {', '.join(single)}")
    for env, group_steps in scores.groupby("env")["env_steps"]:
        lo_s, hi_s = group_steps.min(), group_steps.max()
        if lo_s != hi_s:  # runs evaluated at different steps: say which ones were used
            notes.append(
                f"meta-tests used on {env} lie at {fmt_steps(lo_s)}-{fmt_steps(hi_s)} env steps"
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
    if table.by in AXES:
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
        by: ``algo``, or an axis of ``AXES``: ``objective``, ``augment`` or ``similarity``
            (an ablation: runs without a value on the axis are ignored).
        envs, columns: rows and columns to show (requested ones without runs show ``—``).
        reference: published numbers (``read_reference``) to put beside ours.
    """
    metric_column(metric)
    if by not in ("algo", *AXES):
        raise ValueError(f"unknown table grouping {by!r}; choose algo, {', '.join(AXES)}")
    budget_notes: list[str] = []
    notes: list[str] = []
    runs = _usable(runs, by, metric, notes)
    versions = reward_version_by_env(runs)
    runs, split = deduplicate(runs, by, metric, notes)
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
        reward_versions={e: v for e, v in versions.items() if e in env_order},
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
        "95% stratified-bootstrap CI (rliable)"
    )
    if table.by == "algo":
        pearl = [c for c in cols if c == "pearl"]
        for x in [c for c in cols if c.partition(":")[0] == "cocoa"]:
            for y in pearl:
                p, lo, hi = probability_of_improvement(raw[x], raw[y])
                table.improvement.append((x, y, p, lo, hi))
                interval = (
                    f"[{lo:.2f}, {hi:.2f}]"
                    if np.isfinite(lo) and np.isfinite(hi)
                    else "(no interval: too few runs to resample)"
                )
                table.notes.append(
                    f"probability of improvement P({table.labels[x]} > {table.labels[y]}) = "
                    f"{p:.2f} {interval} over {len(envs)} env(s) (rliable)"
                )


def _add_reference(table: ComparisonTable, reference: pd.DataFrame) -> None:
    """The published numbers beside ours, matched by env name (returns only: the thesis
    publishes no success rates). Values are compared only where the scales agree: envs
    without Metaworld rewards, and Metaworld envs run with v1 rewards (the thesis's).
    Metaworld envs run with v2 rewards get a ranking comparison instead (``_add_rankings``).
    """
    if table.metric != "return":
        table.notes.append("reference: the published tables hold returns, not success rates")
        return
    ranked = [
        e for e in table.envs if table.reward_versions.get(e) == "v2" and e in reference.index
    ]
    shown = []
    for key in table.columns:
        base = _reference_column(table, key)
        if base in reference.columns and base not in shown:
            shown.append(base)
            values = {
                env: float(reference.at[env, base])
                for env in table.envs
                if env in reference.index
                and env not in ranked
                and pd.notna(reference.at[env, base])
            }
            if values:
                table.reference[key] = values
    if not shown:
        table.notes.append("reference: no column of the published table matches")
        return
    unmatched = [e for e in table.envs if e not in reference.index]
    if unmatched:
        table.notes.append(f"no published numbers for: {', '.join(unmatched)}")
    if table.reference:
        table.notes.append(
            "(thesis) columns: published means at 2.5M env steps over 3 seeds "
            "(results/reference); not part of the best-per-row marking"
        )
    if ranked:
        _add_rankings(table, reference, ranked)


def _reference_column(table: ComparisonTable, key: str) -> str:
    """The published table's column for one of ours (``cocoa:bilinear`` → ``cocoa``)."""
    return key if table.by in AXES else key.partition(":")[0]


def _ranking_pairs(table: ComparisonTable, reference: pd.DataFrame) -> list[tuple[str, str]]:
    """Column pairs whose order is compared with the thesis's: CoCOA (each of its columns)
    vs PEARL in a comparison table, every pair of similarities in an ablation."""
    known = [k for k in table.columns if _reference_column(table, k) in reference.columns]
    if table.by in AXES:
        return [(a, b) for i, a in enumerate(known) for b in known[i + 1 :]]
    return [(x, "pearl") for x in known if x.partition(":")[0] == "cocoa" and "pearl" in known]


def _winner(a: str, b: str, value_a: float | None, value_b: float | None) -> str | None:
    """``a``, ``b``, ``tie``, or None when a value is missing."""
    if value_a is None or value_b is None or math.isnan(value_a) or math.isnan(value_b):
        return None
    return a if value_a > value_b else b if value_b > value_a else "tie"


def _add_rankings(table: ComparisonTable, reference: pd.DataFrame, envs: list[str]) -> None:
    """Per env run with Metaworld v2 rewards and pair of columns: who wins here and who won
    in the thesis (``table.rankings``), with win counts and the reason in the notes."""
    table.notes.append(
        f"thesis values not compared on {', '.join(envs)}: these runs use Metaworld v2 "
        "rewards (at most 10 per step), the thesis ran Metaworld v1, whose reach reward pays "
        "up to ~2,000 per step; rankings compared instead"
    )
    for a, b in _ranking_pairs(table, reference):
        rows = []
        for env in envs:
            ours = _winner(
                a,
                b,
                table.cells[env, a].mean if (env, a) in table.cells else None,
                table.cells[env, b].mean if (env, b) in table.cells else None,
            )
            ref_a, ref_b = (reference.at[env, _reference_column(table, k)] for k in (a, b))
            thesis = _winner(
                a,
                b,
                float(ref_a) if pd.notna(ref_a) else None,
                float(ref_b) if pd.notna(ref_b) else None,
            )
            rows.append(Ranking(env, a, b, ours, thesis))
        table.rankings += rows
        both = [r for r in rows if r.ours is not None and r.thesis is not None]
        if not both:
            continue
        la, lb = table.labels[a], table.labels[b]
        ours_k = sum(r.ours == a for r in both)
        thesis_k = sum(r.thesis == a for r in both)
        same = sum(r.ours == r.thesis for r in both)
        table.notes.append(
            f"ranking vs the thesis (Metaworld v2 rewards): {la} beats {lb} on {ours_k} out of "
            f"{len(both)} envs here, on {thesis_k} out of the same {len(both)} in the thesis; "
            f"same winner on {same} out of {len(both)}"
        )
