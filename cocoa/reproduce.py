"""Known-answer checks: does this install reproduce the suite's own learning curves?

A *set* names an env, the algorithms, a preset, a budget and a protocol. ``cocoa reproduce
SET`` runs it (a sweep: relaunching resumes), then compares each algorithm's *score* with
the set's reference band and says pass or fail per row.

* **Score** of one run: the mean of its meta-test returns over the last ``window`` env steps
  of the budget (several meta-tests, so one noisy evaluation does not decide).
* **Reference**: ``results/reference/reproduce/<set>.json`` holds the reference runs' scores
  and curves, recorded from a directory of finished runs with ``--record``, and the source of
  each figure.
* **Band**: the 95% prediction interval for the mean score of ``k`` new seeds, from the ``n``
  reference seeds' scores (mean ``m``, standard deviation ``s``):
  ``m ± t(0.975, n − 1) · s · √(1/k + 1/n)``. A correct install falls outside it about one
  time in twenty per row, by chance.

Nothing here trains by itself: the runs go through ``cocoa.sweep`` and the scores are read
from the run directories by ``cocoa.report``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cocoa.report import REFERENCE_DIR, Run, column_label, load_runs, normalise_env
from cocoa.runs import read_json, write_json

REPRODUCE_DIR = REFERENCE_DIR / "reproduce"


@dataclass(frozen=True)
class ReproduceSet:
    """A named known-answer set: the runs to make and how to score them."""

    name: str
    env: str
    algos: tuple[str, ...]
    steps: int
    window: int  # env steps at the end of the budget whose meta-tests make the score
    preset: str = "quick"
    protocol: str = "thesis"
    description: str = ""
    metric: str = "return"  # the meta-test metric scored: return, or success where it exists

    @property
    def reference_path(self) -> Path:
        return REPRODUCE_DIR / f"{self.name}.json"


SETS: dict[str, ReproduceSet] = {
    s.name: s
    for s in (
        ReproduceSet(
            "point-robot",
            "point-robot",
            ("pearl", "cocoa", "oracle-sac"),
            steps=60_000,
            window=20_000,
            description="PEARL, CoCOA and oracle-SAC on PEARL's point robot, quick preset",
        ),
        ReproduceSet(
            "sparse-point-robot",
            "sparse-point-robot",
            ("pearl", "cocoa", "oracle-sac"),
            steps=60_000,
            window=20_000,
            description="PEARL, CoCOA and oracle-SAC on PEARL's sparse point robot (sparse "
            "return), quick preset",
        ),
        ReproduceSet(
            "cheetah-vel-quick",
            "cheetah-vel",
            ("pearl", "cocoa", "oracle-sac"),
            steps=200_000,
            window=60_000,
            description="PEARL, CoCOA and oracle-SAC on cheetah-vel, quick preset (128-wide "
            "networks)",
        ),
    )
}


def get_set(name: str) -> ReproduceSet:
    """The set ``name``; ``ValueError`` naming the known ones."""
    if name not in SETS:
        raise ValueError(f"unknown set {name!r}; choose from {', '.join(SETS)}")
    return SETS[name]


# ------------------------------------------------------------------------------- scores


def run_score(run: Run, window: int, steps: int, metric: str = "return") -> float | None:
    """Mean meta-test ``metric`` of ``run`` over env steps ``(steps − window, steps]``; None
    when the run has not reached ``steps``."""
    tests = run.meta_tests(metric)
    if tests.empty or tests["env_steps"].iloc[-1] < steps:
        return None
    inside = tests[(tests["env_steps"] > steps - window) & (tests["env_steps"] <= steps)]
    return float(inside["value"].mean())


def band(scores: Sequence[float], k: int) -> tuple[float, float]:
    """95% prediction interval for the mean of ``k`` new seeds' scores, from the reference
    seeds' ``scores`` (Student's t with n − 1 degrees of freedom)."""
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    n = len(x)
    if n < 2:
        raise ValueError("a reference band needs at least 2 reference seeds")
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) * math.sqrt(1 / k + 1 / n)
    return float(x.mean() - half), float(x.mean() + half)


def _runs_of(runs: Sequence[Run], s: ReproduceSet, algo: str) -> list[Run]:
    return [
        r
        for r in runs
        if r.algo == algo
        and normalise_env(r.env) == normalise_env(s.env)
        and r.config.get("preset") == s.preset
        and r.config.get("protocol") == s.protocol
    ]


def record_reference(s: ReproduceSet, runs_dir: str | Path, source: str) -> dict[str, Any]:
    """Writes ``s``'s reference file from the finished runs under ``runs_dir``; returns it."""
    runs = load_runs(runs_dir, envs=[s.env], algos=list(s.algos))
    algos: dict[str, Any] = {}
    for algo in s.algos:
        seeds = {}
        for r in sorted(_runs_of(runs, s, algo), key=lambda r: r.seed):
            score = run_score(r, s.window, s.steps, s.metric)
            if score is None:
                continue
            tests = r.meta_tests(s.metric)
            tests = tests[tests["env_steps"] <= s.steps]
            seeds[str(r.seed)] = {
                "score": score,
                "curve": [[int(x), float(y)] for x, y in zip(tests["env_steps"], tests["value"])],
            }
        if len(seeds) < 2:
            raise ValueError(
                f"{algo}: {len(seeds)} run(s) under {runs_dir} reached {s.steps:,} env steps; "
                "a reference needs at least 2 seeds"
            )
        algos[algo] = {"seeds": seeds}
    reference = {
        "set": s.name,
        "env": s.env,
        "preset": s.preset,
        "protocol": s.protocol,
        "steps": s.steps,
        "window": s.window,
        "metric": s.metric,
        "source": source,
        "algos": algos,
    }
    write_json(s.reference_path, reference)
    return reference


def read_reference(s: ReproduceSet) -> dict[str, Any]:
    """``s``'s reference file; ``ValueError`` when there is none."""
    if not s.reference_path.exists():
        raise ValueError(f"no reference recorded for set {s.name!r} ({s.reference_path})")
    return read_json(s.reference_path)


@dataclass(frozen=True)
class Row:
    """One algorithm's check."""

    algo: str
    seeds: int  # new seeds scored
    score: float | None  # their mean score (None: no run reached the budget)
    low: float
    high: float
    reference_mean: float
    reference_seeds: int
    untrained: float | None = None  # the runs' first meta-test (the untrained agent)

    @property
    def passed(self) -> bool:
        return self.score is not None and self.low <= self.score <= self.high


def check(s: ReproduceSet, runs_dir: str | Path) -> list[Row]:
    """Scores the runs of ``s`` under ``runs_dir`` against its reference band."""
    reference = read_reference(s)
    runs = load_runs(runs_dir, envs=[s.env], algos=list(s.algos))
    rows = []
    for algo in s.algos:
        ref = [v["score"] for v in reference["algos"][algo]["seeds"].values()]
        mine = _runs_of(runs, s, algo)
        scores = [run_score(r, s.window, s.steps, s.metric) for r in mine]
        scores = [x for x in scores if x is not None]
        firsts = [r.meta_tests(s.metric)["value"].iloc[0] for r in mine if r.reached(s.metric)]
        k = max(len(scores), 1)
        low, high = band(ref, k)
        rows.append(
            Row(
                algo,
                len(scores),
                float(np.mean(scores)) if scores else None,
                low,
                high,
                float(np.mean(ref)),
                len(ref),
                float(np.mean(firsts)) if firsts else None,
            )
        )
    return rows


def normalised(rows: Sequence[Row]) -> dict[str, float]:
    """(score − untrained) / (oracle-SAC's score − untrained) per algorithm, where the set
    has oracle-SAC and both figures exist."""
    oracle = next((r for r in rows if r.algo == "oracle-sac" and r.score is not None), None)
    if oracle is None:
        return {}
    return {
        r.algo: (r.score - r.untrained) / (oracle.score - r.untrained)
        for r in rows
        if r.score is not None and r.untrained is not None and oracle.score != r.untrained
    }


def scripted_bounds(s: ReproduceSet, seeds: Sequence[int] = (0,)) -> dict[str, float]:
    """The scripted agents' mean score (the set's metric: return, or success rate) on the
    set's test tasks and protocol, averaged over the evaluation starts of run seeds ``seeds``
    (the point robots; ``cocoa.scripted``), else {}."""
    if normalise_env(s.env) not in ("point-robot", "sparse-point-robot"):
        return {}
    from cocoa.envs import get_family
    from cocoa.evaluator import get_protocol
    from cocoa.scripted import scripted_results
    from cocoa.task_samplers import TaskSampler

    family = get_family(s.env)
    tasks = TaskSampler(family, 0).test_tasks()
    protocol = get_protocol(s.protocol, family)
    per_seed = [scripted_results(family, tasks, protocol, seed) for seed in seeds]
    metric = "success_rate" if s.metric == "success" else "mean_return"
    return {
        name: float(np.mean([getattr(results[name], metric) for results in per_seed]))
        for name in per_seed[0]
    }


def render(s: ReproduceSet, rows: Sequence[Row], bounds: dict[str, float] | None = None) -> str:
    """The pass/fail table as text; with ``bounds`` (``scripted_bounds``), each score also on
    the stand-still-to-optimal scale, and the scripted agents' returns."""
    lines = [
        f"{s.name}: {s.description}; {s.steps:,} env steps, {s.protocol} protocol",
        f"score: mean meta-test {s.metric} over the last {s.window:,} env steps; band: 95% "
        "prediction interval for the mean of that many new seeds",
        f"{'algorithm':<12}{'seeds':>6}{'score':>10}{'reference band':>22}{'ref. mean':>11}"
        f"{'normalised':>12}{'still→opt':>11}  result",
    ]
    norm = normalised(rows)
    for r in rows:
        score = "-" if r.score is None else f"{r.score:.2f}"
        result = "PASS" if r.passed else ("no run" if r.score is None else "FAIL")
        scaled = "-"
        if bounds and r.score is not None:
            scaled = f"{(r.score - bounds['still']) / (bounds['optimal'] - bounds['still']):.2f}"
        lines.append(
            f"{column_label(r.algo, 'algo'):<12}{r.seeds:>6}{score:>10}"
            f"{f'[{r.low:.2f}, {r.high:.2f}]':>22}{r.reference_mean:>11.2f}"
            f"{(f'{norm[r.algo]:.2f}' if r.algo in norm else '-'):>12}{scaled:>11}  {result}"
        )
    if norm:
        lines.append(
            "normalised: (score − untrained) / (oracle-SAC's score − untrained), the untrained "
            "agent being each run's first meta-test"
        )
    if bounds:
        lines.append(
            "still→opt: 0 = standing still, 1 = walking straight to the goal; scripted agents "
            "on the same tasks: "
            + ", ".join(f"{k} {v:.2f}" for k, v in bounds.items())
            + " (cocoa.scripted)"
        )
    return "\n".join(lines)


def plot(s: ReproduceSet, runs_dir: str | Path, output: str | Path) -> list[Path]:
    """Each algorithm's mean curve over the new seeds beside the reference seeds' mean and
    range; writes ``<stem>.png`` and ``<stem>.pdf``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = read_reference(s)
    runs = load_runs(runs_dir, envs=[s.env], algos=list(s.algos))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, algo in zip(colours, s.algos):
        label = column_label(algo, "algo")
        curves = [np.asarray(v["curve"]) for v in reference["algos"][algo]["seeds"].values()]
        grid = np.unique(np.concatenate([c[:, 0] for c in curves]))
        ys = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
        ax.fill_between(grid, ys.min(0), ys.max(0), color=colour, alpha=0.2, linewidth=0)
        ax.plot(grid, ys.mean(0), color=colour, linestyle="--", linewidth=1, alpha=0.8)
        mine = []
        for r in _runs_of(runs, s, algo):
            t = r.meta_tests(s.metric)
            if not t.empty:
                mine.append(np.interp(grid, t["env_steps"], t["value"], right=np.nan))
        if mine:
            ax.plot(grid, np.nanmean(np.stack(mine), 0), color=colour, linewidth=2, label=label)
        else:
            ax.plot([], [], color=colour, linewidth=2, label=f"{label} (no run)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"meta-test {s.metric}" + (" rate" if s.metric == "success" else ""))
    ax.set_title(
        f"{s.name}: this install (solid) against the reference\n"
        "(dashed: reference mean; band: reference seeds' range; grey: scored window)",
        fontsize=10,
    )
    ax.axvspan(s.steps - s.window, s.steps, color="grey", alpha=0.08, linewidth=0)
    ax.legend(frameon=False)
    fig.tight_layout()
    output = Path(output)
    stem = output.with_suffix("") if output.suffix else output
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        fig.savefig(stem.with_suffix(suffix), dpi=130)
        written.append(stem.with_suffix(suffix))
    plt.close(fig)
    return written
