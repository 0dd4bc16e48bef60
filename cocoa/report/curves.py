"""Learning curves: seed-aligned meta-test curves, PEARL's online curves and their plots.

Seeds evaluated at different env steps are aligned by linear interpolation of each run's
meta-test curve onto the union of the evaluation points of its group, restricted to the range
every run of the group covers (no extrapolation); a group's curve therefore ends where its
shortest run ends, and the plot notes say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cocoa.report.runs import (
    METRIC_LABELS,
    Run,
    fmt_steps,
    metric_column,
    normalise_env,
)
from cocoa.report.stats import BOOTSTRAP_SEED
from cocoa.report.tables import (
    ALGO_ORDER,
    SIMILARITY_LABELS,
    column_key,
    column_label,
    deduplicate,
)
from cocoa.runs import read_json


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
    runs, split = deduplicate([r for r in runs if r.reached(metric) is not None], by, metric, notes)
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
                f"{label} on {env}: curve ends at {fmt_steps(end)} env steps, where its "
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
                f"({', '.join(fmt_steps(s) for s in steps)})"
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
