"""Learning curves: seed-aligned meta-test curves, PEARL's online curves and their plots.

Seeds evaluated at different env steps are aligned by linear interpolation of each run's
meta-test curve onto the union of the evaluation points of its group, restricted to the range
every run of the group covers (no extrapolation); a group's curve therefore ends where its
shortest run ends, and the plot notes say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cocoa.report.runs import (
    AXES,
    METRIC_LABELS,
    Run,
    fmt_steps,
    metric_column,
    normalise_env,
    reward_version_by_env,
)
from cocoa.report.stats import BOOTSTRAP_SEED, iqm_curve
from cocoa.report.tables import (
    ALGO_ORDER,
    AXIS_NOUNS,
    AXIS_ORDER,
    column_key,
    column_label,
    deduplicate,
)
from cocoa.runs import read_json

#: What the curves can be coloured by: the algorithm or an axis of the contrastive design
#: space (``AXES``); ``cocoa plot --hue``.
HUES = ("algo", *AXES)
DEFAULT_HUE = "algo"
#: A normalised score is shown only where oracle-SAC has reached at least this fraction of
#: its best gain over the run's untrained return (``normalised_scores``).
MIN_ORACLE_GAIN = 0.25
#: Legend title of each hue.
HUE_TITLES = {
    "algo": "algorithm",
    "objective": "context objective",
    "augment": "augmentations",
    "similarity": "similarity",
}
#: Legend order of each hue's keys (the thesis's); other values follow alphabetically.
HUE_ORDER = {"algo": ALGO_ORDER, **AXIS_ORDER}


def hue_runs(runs: Sequence[Run], hue: str, notes: list[str] | None = None) -> list[Run]:
    """The runs that get a colour under ``hue``: every run for ``algo``; for an axis, the
    runs with a value on it (``Run.axis_value``), so oracle-SAC, MAML and RL2 are left out,
    and PEARL for ``augment`` unless RAD's switch is on. What is left out goes into
    ``notes``. ``ValueError`` for an unknown hue, or when no run has a value on the axis."""
    if hue not in HUES:
        raise ValueError(f"unknown hue {hue!r}; choose from {', '.join(HUES)}")
    kept, left_out = [], []
    for r in runs:
        (kept if hue == "algo" or r.axis_value(hue) is not None else left_out).append(r)
    if left_out and not kept:
        raise ValueError(f"no run has {AXIS_NOUNS[hue]} to colour the curves by (--hue {hue})")
    if left_out and notes is not None:
        algos = ", ".join(sorted({r.algo for r in left_out}))
        notes.append(f"curves leave out {len(left_out)} run(s) without {AXIS_NOUNS[hue]} ({algos})")
    return kept


def learning_curves(
    runs: Sequence[Run], metric: str = "return", hue: str = DEFAULT_HUE
) -> tuple[pd.DataFrame, list[str]]:
    """Seed-aligned curves: (long frame with env, hue, seed, run, finished, env_steps, value;
    notes).

    Each (env, hue) group's runs are linearly interpolated onto the union of their meta-test
    env steps inside the range all of them cover, so every plotted point averages every seed
    of its group and nothing is extrapolated. ``hue``: one of ``HUES``; with an axis, runs
    without a value on it are left out (``hue_runs``). ``ValueError`` when an env's Metaworld
    runs mix reward versions.
    """
    metric_column(metric)
    reward_version_by_env(runs)
    notes: list[str] = []
    runs = hue_runs(runs, hue, notes)
    no_metric = sorted({r.env for r in runs if not r.has_metric(metric)})
    if no_metric:
        notes.append(f"no {METRIC_LABELS[metric]} recorded for: {', '.join(no_metric)}")
    runs = [r for r in runs if r.has_metric(metric)]
    for r in runs:
        if r.reached(metric) is None:
            notes.append(f"no meta-test yet (status {r.status}): {r.path}")
    runs, split = deduplicate(
        [r for r in runs if r.reached(metric) is not None], hue, metric, notes
    )
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.env, column_label(column_key(r, hue, split), hue)), []).append(r)
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
                        "finished": r.finished,
                        "env_steps": grid,
                        "value": np.interp(grid, xs, ys[idx]),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), notes


def online_curves(runs: Sequence[Run], hue: str = DEFAULT_HUE) -> tuple[pd.DataFrame, list[str]]:
    """PEARL-protocol online curves: (long frame with env, hue, seed, run, trajectory, value;
    notes), from each run's last meta-test that kept one (``evals/*.json`` with
    ``online_returns``: runs meta-tested under ``--protocol pearl``); runs without a value on
    the ``hue`` axis are left out (``hue_runs``)."""
    notes: list[str] = []
    rows = []
    for r in hue_runs(runs, hue, notes):
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
        label = column_label(column_key(r, hue), hue)
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


ORACLE = "oracle-sac"
DASHES = ["", (4, 1.5), (1, 1), (3, 1.25, 1.5, 1.25), (5, 1, 1, 1)]  # seaborn dash specs


def _line_style(dash) -> dict:
    """Line2D keywords of a seaborn dash spec (``""``: solid)."""
    return {"linestyle": "-"} if dash == "" else {"dashes": dash}


def normalised_scores(
    runs: Sequence[Run], hue: str = DEFAULT_HUE
) -> tuple[pd.DataFrame, list[str]]:
    """Normalised meta-test return of every non-oracle run on a shared grid per hue: (long
    frame with env, hue, seed, run, env_steps, value; notes).

    Score at env steps t: (R(t) - R(0)) / (O(t) - R(0)), where R is the run's meta-test
    return (R(0): its untrained meta-test at step 0) and O the mean over oracle-SAC's seeds on
    the same env at the same steps (each curve interpolated linearly). 0 is the untrained
    policy and 1 oracle-SAC. A hue's grid is the union of its runs' meta-test steps up to
    where every one of its runs, and the oracle on each of their envs, has a meta-test. Steps
    where some run's denominator O(t) - R(0) is below ``MIN_ORACLE_GAIN`` of the oracle's
    best gain over R(0) (its mean curve's maximum minus R(0)), or not positive, are left out,
    and the notes say so: there the denominator is mostly evaluation noise and the ratio can
    take any value. Envs without oracle-SAC runs are left out.
    With ``hue`` an axis, the scored runs are those with a value on it (``hue_runs``), and
    oracle-SAC, which has none, still normalises them.
    """
    notes: list[str] = []
    runs = [r for r in runs if r.reached("return") is not None]
    oracle: dict[str, list[pd.DataFrame]] = {}
    for r in runs:
        if r.algo == ORACLE:
            oracle.setdefault(r.env, []).append(r.meta_tests("return"))
    if not oracle:
        raise ValueError("no oracle-SAC runs to normalise against")
    others = [r for r in hue_runs(runs, hue) if r.algo != ORACLE]
    without = sorted({r.env for r in others} - set(oracle))
    if without:
        notes.append(f"normalised score: no oracle-SAC runs on {', '.join(without)}")
    others, split = deduplicate([r for r in others if r.env in oracle], hue, "return", notes)
    late = [r for r in others if r.meta_tests("return")["env_steps"].iloc[0] != 0]
    if late:
        notes.append(
            "normalised score: left out runs without a meta-test at step 0: "
            + ", ".join(str(r.path) for r in late)
        )
    others = [r for r in others if r not in late]
    if not others:
        raise ValueError("no run to normalise: none beside oracle-SAC on its envs")

    def curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        xs, idx = np.unique(rows["env_steps"].to_numpy(float), return_index=True)
        return xs, rows["value"].to_numpy(float)[idx]

    oracle_start = {
        env: max(float(c["env_steps"].iloc[0]) for c in cs) for env, cs in oracle.items()
    }
    oracle_end = {
        env: min(float(c["env_steps"].iloc[-1]) for c in cs) for env, cs in oracle.items()
    }

    def oracle_mean(env: str, steps: np.ndarray) -> np.ndarray:
        """O(t): oracle-SAC's mean over its seeds on ``env`` at ``steps`` (interpolated)."""
        return np.mean([np.interp(steps, *curve(c)) for c in oracle[env]], axis=0)

    oracle_best = {  # the maximum of O over the union of the oracle seeds' meta-test steps
        env: float(oracle_mean(env, np.unique(np.concatenate([curve(c)[0] for c in cs]))).max())
        for env, cs in oracle.items()
    }
    groups: dict[str, list[Run]] = {}
    for r in others:
        groups.setdefault(column_label(column_key(r, hue, split), hue), []).append(r)
    frames = []
    for label, members in sorted(groups.items()):
        curves = {r.path: curve(r.meta_tests("return")) for r in members}
        end = min(min(curves[r.path][0][-1], oracle_end[r.env]) for r in members)
        grid = np.unique(np.concatenate([xs for xs, _ in curves.values()]))
        start = max(oracle_start[r.env] for r in members)
        grid = grid[(grid >= start) & (grid <= end)]
        values = {}
        for r in members:
            xs, ys = curves[r.path]
            o = oracle_mean(r.env, grid)
            base = ys[0]
            best = oracle_best[r.env] - base  # oracle-SAC's largest gain over this run's R(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                values[r.path] = np.where(
                    (o > base) & (o - base >= MIN_ORACLE_GAIN * best),
                    (np.interp(grid, xs, ys) - base) / (o - base),
                    np.nan,
                )
        bad = np.any([np.isnan(v) for v in values.values()], axis=0)
        if bad.any():
            notes.append(
                f"normalised score of {label}: left out env steps where oracle-SAC is less than "
                f"{MIN_ORACLE_GAIN:g} of its best above a run's untrained return: "
                f"{', '.join(fmt_steps(x) for x in grid[bad])}"
            )
        for r in members:
            frames.append(
                pd.DataFrame(
                    {
                        "env": r.env,
                        "hue": label,
                        "seed": r.seed,
                        "run": str(r.path),
                        "env_steps": grid[~bad],
                        "value": values[r.path][~bad],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), notes


def aggregate_curve(normalised: pd.DataFrame) -> pd.DataFrame:
    """IQM over envs and runs of the normalised score per hue and env step, with rliable's
    stratified-bootstrap 95% interval (runs resampled within each env): columns hue,
    env_steps, iqm, low, high, runs, envs."""
    rows = []
    for label, sub in normalised.groupby("hue", sort=True):
        steps = np.sort(sub["env_steps"].unique())
        if steps.size == 0:
            continue
        per_env = [
            env_rows.pivot(index="run", columns="env_steps", values="value")[steps].to_numpy()
            for _, env_rows in sub.groupby("env", sort=True)
        ]
        point, low, high = iqm_curve(per_env)
        for k, step in enumerate(steps):
            rows.append(
                {
                    "hue": label,
                    "env_steps": int(step),
                    "iqm": float(point[k]),
                    "low": float(low[k]),
                    "high": float(high[k]),
                    "runs": int(sum(a.shape[0] for a in per_env)),
                    "envs": len(per_env),
                }
            )
    return pd.DataFrame(rows, columns=["hue", "env_steps", "iqm", "low", "high", "runs", "envs"])


@dataclass
class PlotData:
    """What ``plot_learning_curves`` draws.

    Attributes:
        curves: long frame: metric, env, hue, seed, run, finished, env_steps, value.
        markers: the last point of each curve (metric, env, hue) with an unfinished run:
            metric, env, hue, env_steps, value (mean over the curve's seeds).
        aggregate: ``aggregate_curve`` of the normalised scores (empty: no panel).
        reward_versions: env -> Metaworld reward version.
        notes: what was left out and why.
    """

    curves: pd.DataFrame
    markers: pd.DataFrame
    aggregate: pd.DataFrame
    reward_versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[str]:
        """Metrics with panels, in drawing order."""
        return list(dict.fromkeys(self.curves["metric"]))


def plot_data(runs: Sequence[Run], metric: str = "both", hue: str = DEFAULT_HUE) -> PlotData:
    """The frames behind the plot. ``metric``: ``return``, ``success`` or ``both`` (return
    panels, and success panels for the envs that record success: Metaworld). ``hue``: one of
    ``HUES``; with an axis, the curves are the runs with a value on it, and oracle-SAC's runs
    still normalise the aggregate panel's scores."""
    if metric not in ("return", "success", "both"):
        raise ValueError(f"unknown metric {metric!r}; choose return, success or both")
    hue_runs(runs, hue)  # an unknown hue, or no run with a value on it: one line, up front
    versions = reward_version_by_env(runs)
    notes: list[str] = []
    frames = []
    metrics = ["return", "success"] if metric == "both" else [metric]
    for m in metrics:
        if m == "success" and metric == "both" and not any(r.is_metaworld for r in runs):
            continue  # no family with success: return panels only, nothing to note
        try:
            data, m_notes = learning_curves(runs, m, hue)
        except ValueError:
            if metric != "both":
                raise
            notes.append(f"no {METRIC_LABELS[m]} panels: no run records one")
            continue
        frames.append(data.assign(metric=m))
        notes += [
            n
            for n in m_notes
            if n not in notes and (m == "return" or not n.startswith("no meta-test success"))
        ]
    curves = pd.concat(frames, ignore_index=True)
    keys = ["metric", "env", "hue"]
    last = curves[curves["env_steps"] == curves.groupby(keys)["env_steps"].transform("max")]
    summary = last.groupby(keys, sort=False).agg(
        env_steps=("env_steps", "first"), value=("value", "mean"), finished=("finished", "all")
    )
    markers = summary[~summary["finished"]].drop(columns="finished").reset_index()
    aggregate = pd.DataFrame(columns=["hue", "env_steps", "iqm", "low", "high", "runs", "envs"])
    if not any(r.algo == ORACLE for r in runs):
        notes.append("no aggregate panel: no oracle-SAC runs to normalise the scores against")
    else:
        try:
            normalised, n_notes = normalised_scores(runs, hue)
            notes += n_notes
            aggregate = aggregate_curve(normalised)
        except ValueError as exc:
            notes.append(f"no aggregate panel: {exc}")
    return PlotData(curves, markers, aggregate, versions, notes)


def _steps_formatter(value: float, _pos: int) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _hue_order(labels, hue: str) -> list[str]:
    """The thesis's order of the hue's values (``HUE_ORDER``: MAML, RL2, PEARL, CoCOA,
    oracle-SAC; Bhattacharyya, Bilinear; ...), others alphabetically after."""
    rank = {column_label(k, hue): i for i, k in enumerate(HUE_ORDER.get(hue, []))}
    return sorted(dict.fromkeys(labels), key=lambda h: (rank.get(h, 99), h))


def _env_order(present, envs: Sequence[str] | None) -> list[str]:
    present = set(present)
    order = [normalise_env(e) for e in envs] if envs else sorted(present)
    return [e for e in order if e in present] + sorted(present - set(order))


def _title(env: str, seeds: pd.Series, hue_order: list[str], versions: dict[str, str]) -> str:
    """``reach (3 seeds, rewards v2)``; seed counts per hue when they differ."""
    if seeds.nunique() == 1:
        n = int(seeds.iloc[0])
        parts = [f"{n} seed{'s' if n != 1 else ''}"]
    else:
        parts = ["seeds: " + ", ".join(f"{h} {int(seeds[h])}" for h in hue_order if h in seeds)]
    if env in versions:
        parts.append(f"rewards {versions[env]}")
    return f"{env} ({', '.join(parts)})"


def _write(figure, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        figure.savefig(path, dpi=150, bbox_inches="tight")
        written.append(path)
    plt.close(figure)
    return written


def plot_learning_curves(
    runs: Sequence[Run],
    output: str | Path,
    metric: str = "both",
    hue: str = DEFAULT_HUE,
    envs: Sequence[str] | None = None,
    online: bool = False,
) -> tuple[list[Path], list[str]]:
    """Draws the learning curves and writes ``<stem>.png`` and ``<stem>.pdf``; returns
    (written paths, notes).

    Panels (mean and 95% bootstrap CI band across seeds, seaborn): a row of return panels,
    one per env; with ``metric="both"`` a row of success-rate panels below for the envs that
    record success (Metaworld); then, when oracle-SAC runs exist, the aggregate panel: IQM of
    the normalised score over env steps across envs with rliable's interval, drawn with
    rliable's sample-efficiency curve. A curve with an unfinished run ends in an ×. Metaworld
    panels name the reward version.

    ``hue``: one colour per algorithm or per value of an axis (``HUES``; runs without a value
    on the axis are left out of the curves, oracle-SAC still normalises the aggregate panel).

    ``online``: PEARL's online curve instead (return by trajectory index of the last
    ``pearl``-protocol meta-test, see ``online_curves``)."""
    output = Path(output)
    if output.suffix.lower() not in ("", ".png", ".pdf"):
        raise ValueError(f"--output must end in .png or .pdf (both are written), got {output}")
    stem = output.with_suffix("") if output.suffix else output
    if online:
        return _plot_online(runs, stem, hue, envs)
    return _plot_panels(plot_data(runs, metric, hue), stem, hue, envs)


def _plot_panels(
    data: PlotData, stem: Path, hue: str, envs: Sequence[str] | None
) -> tuple[list[Path], list[str]]:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter
    from rliable import plot_utils

    curves = data.curves
    hue_order = _hue_order(list(curves["hue"]) + list(data.aggregate["hue"]), hue)
    colors = dict(zip(hue_order, sns.color_palette("colorblind", len(hue_order)), strict=True))
    dashes = {h: DASHES[k % len(DASHES)] for k, h in enumerate(hue_order)}
    rows = [(m, _env_order(curves.loc[curves["metric"] == m, "env"], envs)) for m in data.metrics]
    ncols = min(max(len(e) for _, e in rows), 3)
    shape = [(m, es[k : k + ncols]) for m, es in rows for k in range(0, len(es), ncols)]
    has_aggregate = not data.aggregate.empty
    nrows = len(shape) + has_aggregate
    sns.set_theme(style="whitegrid", context="notebook")
    figure, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, 3.4 * nrows), squeeze=False, layout="constrained"
    )
    for row, (m, chunk) in enumerate(shape):
        for col in range(ncols):
            ax = axes[row][col]
            if col >= len(chunk):
                ax.set_visible(False)
                continue
            env = chunk[col]
            sub = curves[(curves["metric"] == m) & (curves["env"] == env)]
            sns.lineplot(
                data=sub,
                x="env_steps",
                y="value",
                hue="hue",
                hue_order=[h for h in hue_order if h in set(sub["hue"])],
                palette=colors,
                style="hue",  # dashes too: curves that coincide stay distinguishable
                dashes=dashes,
                errorbar=("ci", 95),
                n_boot=1000,
                seed=BOOTSTRAP_SEED,
                linewidth=2,
                legend=False,
                ax=ax,
            )
            marks = data.markers[(data.markers["metric"] == m) & (data.markers["env"] == env)]
            for mark in marks.itertuples():
                ax.plot(mark.env_steps, mark.value, "x", color=colors[mark.hue], ms=11, mew=2.5)
            seeds = sub.groupby("hue")["seed"].nunique()
            ax.set_title(_title(env, seeds, hue_order, data.reward_versions), fontsize="medium")
            ax.set_xlabel("environment steps")
            ax.set_ylabel(METRIC_LABELS[m])  # every panel: y scales differ across envs
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
            if m == "success":
                ax.set_ylim(-0.02, 1.02)
    if has_aggregate:
        ax = axes[-1][0]
        agg = data.aggregate
        algorithms = [h for h in hue_order if h in set(agg["hue"])]
        for label in algorithms:
            sub = agg[agg["hue"] == label]
            plot_utils.plot_sample_efficiency_curve(
                sub["env_steps"].to_numpy(),
                {label: sub["iqm"].to_numpy()},
                {label: np.vstack([sub["low"].to_numpy(), sub["high"].to_numpy()])},
                algorithms=[label],
                colors=colors,
                xlabel="environment steps",
                ylabel="IQM of normalised score",
                labelsize="medium",
                ticklabelsize="small",
                ax=ax,
                marker="",
            )
        ax.axhline(1.0, color="0.4", linestyle=":", linewidth=1)
        ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
        n_envs = int(agg["envs"].max())
        ax.set_title(
            f"aggregate over {n_envs} env{'s' if n_envs != 1 else ''}: 0 = untrained, "
            "1 = oracle-SAC",
            fontsize="medium",
        )
        for col in range(1, ncols):
            axes[-1][col].set_visible(False)
    handles = [
        Line2D([], [], color=colors[h], linewidth=2, label=h, **_line_style(dashes[h]))
        for h in hue_order
    ]
    if not data.markers.empty:
        handles.append(
            Line2D([], [], color="0.2", marker="x", linestyle="", ms=9, mew=2.5,
                   label="(unfinished): a run of this curve has not finished")
        )  # fmt: skip
    legend_title = HUE_TITLES[hue]
    figure.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(handles), 4),
        title=f"{legend_title} (mean and 95% CI across seeds)",
        frameon=False,
    )
    return _write(figure, stem), data.notes


def _plot_online(
    runs: Sequence[Run], stem: Path, hue: str, envs: Sequence[str] | None
) -> tuple[list[Path], list[str]]:
    import seaborn as sns

    data, notes = online_curves(runs, hue)
    versions = reward_version_by_env(runs)
    env_order = _env_order(data["env"], envs)
    hue_order = _hue_order(data["hue"], hue)
    seeds = data.groupby(["env", "hue"])["seed"].nunique()
    sns.set_theme(style="whitegrid", context="notebook")
    grid = sns.relplot(
        data=data,
        x="trajectory",
        y="value",
        hue="hue",
        hue_order=hue_order,
        style="hue",
        style_order=hue_order,
        col="env",
        col_order=env_order,
        col_wrap=min(len(env_order), 3) if len(env_order) > 1 else None,
        kind="line",
        errorbar=("ci", 95),
        n_boot=1000,
        seed=BOOTSTRAP_SEED,
        height=3.4,
        aspect=1.3,
        linewidth=2,
        facet_kws={"sharey": False, "sharex": False},
    )
    for env, ax in grid.axes_dict.items():
        ax.set_title(_title(env, seeds.loc[env], hue_order, versions))
        ax.set_xlabel("trajectory (PEARL protocol)")
        ax.set_ylabel(METRIC_LABELS["return"])
        ax.xaxis.get_major_locator().set_params(integer=True)
    legend_title = HUE_TITLES[hue]
    sns.move_legend(
        grid,
        "lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(len(hue_order), 5),
        title=f"{legend_title} (mean and 95% CI across seeds)",
        frameon=False,
    )
    grid.figure.tight_layout()
    return _write(grid.figure, stem), notes
