"""Reporting on synthetic run directories with known numbers (no training)."""

from __future__ import annotations

import csv
import io
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cocoa import report
from cocoa.cli import main
from cocoa.runs import ProgressWriter, run_dir_for, write_json, write_status

REFERENCE = report.REFERENCE_DIR


@pytest.fixture(autouse=True)
def few_aggregate_resamples(monkeypatch):
    """Aggregate intervals (IQM, probability of improvement) with 200 resamples instead of
    2,000: rliable's bootstrap calls its statistic once per resample. Cell intervals keep
    their default, which the closed forms below rely on."""
    monkeypatch.setattr(report.stats, "AGGREGATE_RESAMPLES", 200)


def write_run(
    root: Path,
    env: str,
    algo: str,
    seed: int,
    points: list[tuple[int, float]],
    *,
    status: str = "finished",
    similarity: str | None = None,
    success: list[float] | None = None,
    name: str | None = None,
    reward_version: str | None = None,
    algo_extra: dict | None = None,
) -> Path:
    """A run directory as the trainer writes it: meta-tests at ``points`` (env steps, return)
    with a training row without meta-test between consecutive ones. ``algo_extra``: more
    ``algo_config`` keys (``objective``, ``augment`` as a list, ``augment_context``)."""
    run_dir = run_dir_for(root, env, algo, name or f"seed{seed}")
    run_dir.mkdir(parents=True)
    algo_config = {"latent_dim": 5, "kl_lambda": 0.1}
    if similarity is not None:  # as PEARL/CoCOA write it: PEARL has the term switched off
        algo_config["similarity"] = similarity
        algo_config["contrastive_weight"] = 0.0 if algo == "pearl" else 0.1
    algo_config |= algo_extra or {}
    config = {
        "env": env,
        "algo": algo,
        "seed": seed,
        "task_seed": 0,
        "steps": points[-1][0],
        "preset": "quick",
        "protocol": "thesis",
        "device": "cpu",
        "eval_interval": 1000,
        "algo_config": algo_config,
    }
    if reward_version is not None:  # absent: written before the field existed (v2)
        config["reward_version"] = reward_version
    write_json(run_dir / "config.json", config)
    columns = ["iteration", "env_steps", "wall_time_s", "meta_test/return"]
    columns += ["meta_test/success"] if success is not None else []
    columns += ["qf_loss"]
    writer = ProgressWriter(run_dir / "progress.csv")
    iteration = 0
    for i, (steps, value) in enumerate(points):
        if i > 0:  # a training iteration without meta-test before each later meta-test
            iteration += 1
            writer.write({"iteration": iteration, "env_steps": steps - 1, "qf_loss": 1.0}, columns)
        row = {"iteration": iteration, "env_steps": steps, "meta_test/return": value}
        if success is not None:
            row["meta_test/success"] = success[i]
        iteration += 1
        writer.write(row | {"wall_time_s": 0.5 * iteration}, columns)
    write_status(run_dir, status, env_steps=points[-1][0])
    return run_dir


def final(value: float, steps: int = 3000) -> list[tuple[int, float]]:
    """A curve from 0 to ``value`` with meta-tests every 1000 steps."""
    return [(s, value * s / steps) for s in range(0, steps + 1, 1000)]


@pytest.fixture
def runs_root(tmp_path: Path) -> Path:
    """point-robot: CoCOA 1,2,3 vs PEARL 1,1,1; reach: CoCOA 10,20 (2 seeds), PEARL 30,40,50;
    push: PEARL only."""
    root = tmp_path / "runs"
    for seed, value in enumerate([1.0, 2.0, 3.0]):
        write_run(root, "point-robot", "cocoa", seed, final(value), similarity="bhattacharyya")
        write_run(root, "point-robot", "pearl", seed, final(1.0), similarity="bhattacharyya")
        write_run(root, "reach", "pearl", seed, final(30.0 + 10 * seed))
        write_run(root, "push", "pearl", seed, final(5.0))
    for seed, value in enumerate([10.0, 20.0]):
        write_run(root, "reach", "cocoa", seed, final(value), similarity="bhattacharyya")
    return root


# --------------------------------------------------------------------------- statistics


def rliable_estimate(strata, func, reps, seed=0):
    """rliable called directly: the reference the report's statistics must equal."""
    library = report.stats.rliable_library()
    np.random.seed(seed)  # noqa: NPY002 (rliable draws from numpy's global generator)
    point, bounds = library.get_interval_estimates({"x": strata}, func, reps=reps)
    return point["x"], bounds["x"][0], bounds["x"][1]


def test_bootstrap_ci_closed_forms_and_rliable():
    from rliable import metrics

    # identical values: the interval collapses to the value
    lo, hi = report.bootstrap_ci([4.2, 4.2, 4.2])
    assert lo == pytest.approx(4.2) and hi == pytest.approx(4.2)
    # two values a < b: resample means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% quantiles are exactly a and b
    assert report.bootstrap_ci([1.0, 3.0]) == (1.0, 3.0)
    # one value: no interval
    assert all(math.isnan(x) for x in report.bootstrap_ci([7.0]))
    # equals rliable called directly with the same seed and resamples
    values = [1.0, 2.0, 3.0, 10.0]
    a = report.bootstrap_ci(values, n_resamples=500)
    _, lo, hi = rliable_estimate(
        [np.array(values)[:, None]], lambda s: np.array([metrics.aggregate_mean(s)]), 500
    )
    assert a == (lo[0], hi[0])
    assert 1.0 <= a[0] < 4.0 < a[1] <= 10.0
    # the global generator is left as it was
    np.random.seed(5)  # noqa: NPY002
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(5)  # noqa: NPY002
    report.bootstrap_ci(values, n_resamples=50)
    assert np.random.random() == expected  # noqa: NPY002
    with pytest.raises(ValueError):
        report.bootstrap_ci([])


def test_probability_of_improvement_matches_rliable():
    from rliable import metrics

    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, size=(3, 4)), rng.normal(0, 1, size=(3, 4))
    p, lo, hi = report.probability_of_improvement(list(x.T), list(y.T), n_resamples=300)
    assert p == pytest.approx(metrics.probability_of_improvement(x, y))
    # the interval: rliable's bootstrap over the 4 envs' x and y runs, resampled independently
    strata = [c[:, None] for c in x.T] + [c[:, None] for c in y.T]

    def average(*s):
        return np.array(
            [np.mean([metrics.probability_of_improvement(a, b) for a, b in zip(s[:4], s[4:])])]
        )

    ref_p, ref_lo, ref_hi = rliable_estimate(strata, average, 300)
    assert (p, lo, hi) == pytest.approx((ref_p[0], ref_lo[0], ref_hi[0]))
    assert lo <= p <= hi
    # every run of X above every run of Y: P = 1 in every resample
    p, lo, hi = report.probability_of_improvement([np.array([2.0, 3.0])], [np.array([0.0, 1.0])])
    assert (p, lo, hi) == (1.0, 1.0, 1.0)
    # one run each: no interval, and the point is still rliable's (a tie counts one half)
    p, lo, hi = report.probability_of_improvement([np.array([1.0])], [np.array([1.0])])
    assert p == 0.5 and math.isnan(lo) and math.isnan(hi)


def test_iqm_closed_form_and_rliable():
    from rliable import metrics

    # IQM of 0..7: the 25% trimmed mean keeps 2, 3, 4, 5
    point, lo, hi = report.iqm_with_ci([np.arange(4.0), np.arange(4.0, 8.0)])
    assert point == 3.5
    # constant scores: the interval collapses to the value
    assert report.iqm_with_ci([np.full(3, 0.25), np.full(2, 0.25)]) == (0.25, 0.25, 0.25)
    # every env one run: nothing to resample, no interval
    point, lo, hi = report.iqm_with_ci([np.array([0.2]), np.array([0.4])])
    assert point == pytest.approx(0.3) and math.isnan(lo) and math.isnan(hi)
    scores = [np.array([0.0, 0.2, 0.4, 1.0]), np.array([0.1, 0.9])]
    point, lo, hi = report.iqm_with_ci(scores, n_resamples=300)
    assert point == pytest.approx(metrics.aggregate_iqm(np.concatenate(scores)))

    def pooled(*s):
        return np.array([metrics.aggregate_iqm(np.concatenate([a.ravel() for a in s]))])

    ref = rliable_estimate([g[:, None] for g in scores], pooled, 300)
    assert (point, lo, hi) == pytest.approx(tuple(float(v[0]) for v in ref))


def test_iqm_curve_matches_rliable_per_step():
    from rliable import metrics

    env_a = np.array([[0.0, 0.5, 1.0], [0.0, 0.3, 0.9], [0.0, 0.1, 0.8]])  # runs x steps
    env_b = np.array([[0.0, 0.2, 0.6], [0.0, 0.4, 0.7]])
    point, lo, hi = report.stats.iqm_curve([env_a, env_b], n_resamples=200)
    pooled = np.concatenate([env_a, env_b])
    assert point == pytest.approx([metrics.aggregate_iqm(pooled[:, k]) for k in range(3)])
    assert point[0] == lo[0] == hi[0] == 0.0  # every run starts at 0

    def per_step(*s):
        flat = np.concatenate([a.reshape(a.shape[0], -1) for a in s])
        return np.array([metrics.aggregate_iqm(flat[:, k]) for k in range(flat.shape[1])])

    ref = rliable_estimate([env_a[:, None, :], env_b[:, None, :]], per_step, 200)
    assert np.allclose(point, ref[0]) and np.allclose(lo, ref[1]) and np.allclose(hi, ref[2])


# ------------------------------------------------------------------------------- tables


def test_table_values_best_and_missing(runs_root: Path):
    table = report.build_table(report.load_runs(runs_root))
    assert table.budget == 3000
    assert table.columns == ["pearl", "cocoa"]  # the thesis's column order
    assert table.envs == ["point-robot", "push", "reach"]
    cocoa = table.cells["point-robot", "cocoa"]
    assert cocoa.mean == pytest.approx(2.0) and cocoa.n == 3
    # three seeds: each extreme resample mean (all draws equal the min, or the max) has
    # probability 1/27 > 2.5%, so the percentile interval is exactly [min, max]
    assert (cocoa.low, cocoa.high) == (1.0, 3.0)
    pearl = table.cells["point-robot", "pearl"]  # identical seeds: the interval collapses
    assert (pearl.mean, pearl.low, pearl.high) == pytest.approx((1.0, 1.0, 1.0))
    assert cocoa.best and not pearl.best
    reach = table.cells["reach", "cocoa"]  # two seeds: interval = [min, max] exactly
    assert (reach.mean, reach.low, reach.high, reach.n) == (15.0, 10.0, 20.0, 2)
    assert table.cells["reach", "pearl"].best
    assert ("push", "cocoa") not in table.cells
    assert not table.cells["push", "pearl"].best  # alone in its row: nothing to mark
    assert "missing: CoCOA on push" in table.notes
    assert "fewer seeds: CoCOA on reach (2/3)" in table.notes
    assert table.n_expected == 3
    assert "CoCOA beats PEARL on 1 out of 2 envs (PEARL wins 1)" in table.notes


def test_markdown_shape(runs_root: Path):
    table = report.build_table(report.load_runs(runs_root))
    text = report.render(table, "markdown")
    lines = text.splitlines()
    header = lines.index("| environment | PEARL | CoCOA |")
    assert lines[header + 1] == "|---|---:|---:|"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert rows["point-robot"] == "| point-robot | 1.00 [1.00, 1.00] | **2.00** [1.00, 3.00] |"
    assert rows["push"] == "| push | 5.00 [5.00, 5.00] | — |"
    assert "15.00 [10.00, 20.00] (n=2/3)" in rows["reach"]
    assert "**40.0**" not in rows["reach"] and "**40.00**" in rows["reach"]
    assert rows["IQM (normalised)"].count("[") == 2
    assert "- missing: CoCOA on push" in lines
    assert any(line.startswith("- budget: 3,000 env steps") for line in lines)
    assert lines[0].startswith(
        "Meta-test return at 3,000 env steps, Metaworld rewards v2: mean [95% bootstrap CI]"
    )


def test_latex_shape(runs_root: Path):
    table = report.build_table(report.load_runs(runs_root))
    text = report.render(table, "latex")
    assert "\\begin{tabular}{lrr}" in text and "\\toprule" in text and "\\bottomrule" in text
    body = [line for line in text.splitlines() if line.endswith("\\\\")]
    assert len(body) == 1 + 3 + 1  # header, three envs, IQM
    assert all(line.count(" & ") == 2 for line in body)
    assert "point-robot & 1.00 {\\scriptsize [1.00, 1.00]} & \\textbf{2.00}" in text
    assert "push & 5.00 {\\scriptsize [5.00, 5.00]} & --- \\\\" in text
    assert "(n=2/3)" in text
    assert "95\\% bootstrap CI" in text
    assert "% missing: CoCOA on push" in text


def test_csv_shape(runs_root: Path):
    table = report.build_table(report.load_runs(runs_root))
    rows = list(csv.DictReader(io.StringIO(report.render(table, "csv"))))
    by_env = {r["env"]: r for r in rows}
    assert set(by_env) == {"point-robot", "push", "reach", "IQM (normalised)"}
    assert float(by_env["point-robot"]["CoCOA mean"]) == pytest.approx(2.0)
    assert by_env["point-robot"]["CoCOA best"] == "*"
    assert by_env["point-robot"]["PEARL best"] == ""
    assert by_env["reach"]["CoCOA n"] == "2"
    assert by_env["push"]["CoCOA mean"] == "" and by_env["push"]["CoCOA n"] == ""
    assert float(by_env["reach"]["CoCOA ci_low"]) == 10.0


def test_reference_columns(tmp_path: Path):
    """Metaworld runs with v1 rewards (the thesis's) are compared by value."""
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(root, "reach", "pearl", seed, final(100.0), reward_version="v1")
        write_run(root, "reach", "cocoa", seed, final(200.0), reward_version="v1")
        write_run(root, "point-robot", "cocoa", seed, final(-5.0))
    reference = report.read_reference(REFERENCE / "thesis_table_5_1.csv")
    table = report.build_table(report.load_runs(root), reference=reference)
    text = report.render(table, "markdown")
    assert "| environment | PEARL | PEARL (thesis) | CoCOA | CoCOA (thesis) |" in text
    assert (
        "| reach | 100.0 [100.0, 100.0] | 90500.4 | **200.0** [200.0, 200.0] | 142177.1 |" in text
    )
    assert "| point-robot | — | — | -5.00 [-5.00, -5.00] | — |" in text
    assert any("no published numbers for: point-robot" in n for n in table.notes)
    rows = list(csv.DictReader(io.StringIO(report.render(table, "csv"))))
    assert rows[1]["env"] == "reach" and float(rows[1]["CoCOA (thesis)"]) == 142177.1
    assert table.reward_versions == {"reach": "v1"} and not table.rankings
    assert report.caption(table).startswith(
        "Meta-test return at 3,000 env steps, Metaworld rewards v1: mean"
    )


def test_reference_v2_compares_rankings_not_values(tmp_path: Path):
    """v2 rewards pay at most 10 per step: the thesis's values (v1) are not beside ours;
    who wins CoCOA vs PEARL per row is compared instead."""
    root = tmp_path / "runs"
    # env: (pearl, cocoa). The thesis has CoCOA ahead on all three: reach 142177.1 vs
    # 90500.4, push 118123.4 vs 45466.1, pick-place 30804.1 vs 1881.9.
    ours = {"reach": (30.0, 20.0), "push": (1.0, 2.0), "pick-place": (4.0, 4.0)}
    for env, (pearl, cocoa) in ours.items():
        for seed in range(2):
            write_run(root, env, "pearl", seed, final(pearl), reward_version="v2")
            write_run(root, env, "cocoa", seed, final(cocoa))  # no field: v2
    write_run(root, "point-robot", "pearl", 0, final(-5.0))
    reference = report.read_reference(REFERENCE / "thesis_table_5_1.csv")
    assert reference.at["push", "cocoa"] > reference.at["push", "pearl"]
    assert reference.at["pick-place", "cocoa"] > reference.at["pick-place", "pearl"]
    table = report.build_table(report.load_runs(root), reference=reference)
    assert table.reference == {}  # no value of the thesis beside a v2 number
    winners = {r.env: (r.ours, r.thesis) for r in table.rankings}
    assert winners == {
        "pick-place": ("tie", "cocoa"),
        "push": ("cocoa", "cocoa"),
        "reach": ("pearl", "cocoa"),
    }
    assert (
        "ranking vs the thesis (Metaworld v2 rewards): CoCOA beats PEARL on 1 out of 3 envs "
        "here, on 3 out of the same 3 in the thesis; same winner on 1 out of 3" in table.notes
    )
    why = [n for n in table.notes if n.startswith("thesis values not compared")]
    assert why == [
        "thesis values not compared on pick-place, push, reach: these runs use Metaworld v2 "
        "rewards (at most 10 per step), the thesis ran Metaworld v1, whose reach reward pays "
        "up to ~2,000 per step; rankings compared instead"
    ]
    text = report.render(table, "markdown")
    assert "| environment | PEARL | CoCOA | CoCOA vs PEARL: winner here / thesis |" in text
    assert "| reach | **30.00** [30.00, 30.00] | 20.00 [20.00, 20.00] | PEARL / CoCOA |" in text
    assert "| pick-place | **4.00** [4.00, 4.00] | **4.00** [4.00, 4.00] | tie / CoCOA |" in text
    assert "| point-robot | -5.00 (n=1/2) | — |  |" in text  # not Metaworld, not in the thesis
    rows = {r["env"]: r for r in csv.DictReader(io.StringIO(report.render(table, "csv")))}
    assert rows["push"]["CoCOA vs PEARL: winner here / thesis"] == "CoCOA / CoCOA"
    assert "PEARL / CoCOA" in report.render(table, "latex")
    # a v1 env beside v2 envs: values for it, rankings for the others
    for seed in range(2):
        write_run(root, "soccer", "pearl", seed, final(7.0), reward_version="v1")
    table = report.build_table(report.load_runs(root), reference=reference)
    assert table.reference["pearl"] == {"soccer": reference.at["soccer", "pearl"]}
    assert {r.env for r in table.rankings} == {"pick-place", "push", "reach"}
    assert report.caption(table).startswith(
        "Meta-test return at 3,000 env steps, Metaworld rewards v1 on soccer; v2 on "
        "pick-place, push, reach: mean"
    )


def test_reward_versions_never_mix_in_a_cell(tmp_path: Path, capsys):
    root = tmp_path / "runs"
    write_run(root, "reach", "pearl", 0, final(1000.0), reward_version="v1")
    write_run(root, "reach", "pearl", 1, final(5.0), reward_version="v2")
    write_run(root, "point-robot", "pearl", 0, final(-5.0), reward_version="v1")  # not Metaworld
    message = (
        "runs on reach mix Metaworld reward versions v1 (1 run) and v2 (1 run), whose returns "
        "are not on one scale; choose one with --reward-version v1 or v2"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        report.build_table(report.load_runs(root))
    with pytest.raises(ValueError, match=re.escape(message)):
        report.learning_curves(report.load_runs(root))
    with pytest.raises(SystemExit) as exc:
        main(["table", "--runs", str(root)])
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    # the filter keeps one version (and the runs that have none: point-robot)
    runs = report.load_runs(root, reward_versions=["v1"])
    assert sorted((r.env, r.seed) for r in runs) == [("point-robot", 0), ("reach", 0)]
    main(["table", "--runs", str(root), "--reward-version", "v2", "--format", "csv"])
    rows = {r["env"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(rows["reach"]["PEARL mean"]) == 5.0
    # a reward version that is neither: one line naming the file
    (root / "reach" / "pearl" / "seed1" / "config.json").write_text(
        '{"env": "reach", "algo": "pearl", "seed": 1, "reward_version": "v9"}'
    )
    with pytest.raises(ValueError, match=r"corrupt .*seed1/config.json: reward_version 'v9'"):
        report.load_runs(root)


def test_reference_names_match_thesis_labels():
    frame = report.read_reference(REFERENCE / "thesis_table_5_1.csv")
    assert len(frame) == 30 and list(frame.columns) == ["maml-trpo", "rl2-ppo", "pearl", "cocoa"]
    assert (
        report.normalise_env("Pick-place") == "pick-place" == report.normalise_env("pick-place-v3")
    )
    assert frame.at["pick-place", "cocoa"] == 30804.1
    assert frame.at["button-press-topdown-wall", "rl2-ppo"] == 280400.5


def test_thesis_numbers_reproduce_thesis_claims(tmp_path: Path):
    """One run per published number; the win counts are the thesis's own claims."""
    root = tmp_path / "thesis"
    t51 = report.read_reference(REFERENCE / "thesis_table_5_1.csv")
    for env, row in t51.iterrows():
        for algo, value in row.items():
            write_run(root / "t51", env, algo, 0, [(0, 0.0), (2_500_000, value)])
    table = report.build_table(report.load_runs(root / "t51"))
    assert table.budget == 2_500_000
    assert table.best_counts()["cocoa"] == 15  # "15 out of 30 environments"
    assert table.wins("cocoa", "pearl") == (20, 0, 30)  # "20 out of 30"
    assert "CoCOA beats PEARL on 20 out of 30 envs (PEARL wins 10)" in table.notes
    t52 = report.read_reference(REFERENCE / "thesis_table_5_2.csv")
    for env, row in t52.iterrows():
        for sim, value in row.items():
            write_run(
                root / "t52",
                env,
                "cocoa",
                0,
                [(0, 0.0), (2_500_000, value)],
                similarity=sim,
                name=f"{sim}-seed0",
            )
    ablation = report.build_table(report.load_runs(root / "t52"), by="similarity")
    assert ablation.columns == ["bhattacharyya", "bilinear"]
    assert ablation.win_lines() == [
        "Bhattacharyya beats Bilinear on 8 out of 10 envs (Bilinear wins 2)"
    ]


def test_at_steps_selects_last_meta_test_at_or_below(tmp_path: Path):
    root = tmp_path / "runs"
    points = [(0, 0.0), (1000, 10.0), (2000, 20.0), (3000, 30.0)]
    write_run(root, "point-robot", "pearl", 0, points)
    write_run(
        root, "point-robot", "pearl", 1, [(0, 0.0), (1000, 12.0), (2000, 22.0)], status="running"
    )
    runs = report.load_runs(root)
    # default: the largest budget every run reached (seed 1 stopped at 2000)
    table = report.build_table(runs)
    assert table.budget == 2000
    assert table.cells["point-robot", "pearl"].mean == pytest.approx(21.0)
    assert any("limited by" in n and "seed1" in n for n in table.notes)
    assert any("run not finished (status running)" in n for n in table.notes)
    # between meta-tests: the last one at or below the budget
    table = report.build_table(runs, budget=1500)
    assert table.cells["point-robot", "pearl"].mean == pytest.approx(11.0)
    # a run that stopped below the budget is left out, and the table says so
    table = report.build_table(runs, budget=3000)
    cell = table.cells["point-robot", "pearl"]
    assert (cell.mean, cell.n) == (30.0, 1)
    assert any("did not reach 3,000 env steps" in n and "seed1" in n for n in table.notes)


def test_default_budget_is_per_env_and_uneven_eval_steps_are_reported(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "reach", "pearl", 0, [(0, 0.0), (1000, 10.0), (2000, 20.0), (3000, 30.0)])
    write_run(root, "reach", "pearl", 1, [(0, 0.0), (1500, 30.0), (2500, 50.0)])
    write_run(root, "point-robot", "pearl", 0, [(0, 0.0), (100, 1.0)])
    table = report.build_table(report.load_runs(root))
    assert table.budgets == {"point-robot": 100, "reach": 2500} and table.budget is None
    assert table.cells["reach", "pearl"].mean == pytest.approx(35.0)  # 20 (at 2000) and 50
    assert "meta-tests used on reach lie at 2,000-2,500 env steps" in table.notes
    assert table.notes[0].startswith("budget: 100 env steps on point-robot; 2,500 on reach")
    assert report.caption(table).startswith("Meta-test return at each env's budget (see notes)")


def test_ablation_table_and_win_counts(tmp_path: Path):
    root = tmp_path / "runs"
    values = {  # env: (bhattacharyya, bilinear)
        "reach": (10.0, 5.0),
        "push": (3.0, 4.0),
        "soccer": (7.0, 1.0),
    }
    for env, (bh, bi) in values.items():
        for seed in range(2):
            write_run(
                root,
                env,
                "cocoa",
                seed,
                final(bh),
                similarity="bhattacharyya",
                name=f"bhattacharyya-seed{seed}",
                reward_version="v1",
            )
            write_run(
                root,
                env,
                "cocoa",
                seed,
                final(bi),
                similarity="bilinear",
                name=f"bilinear-seed{seed}",
                reward_version="v1",
            )
        write_run(
            root, env, "pearl", 0, final(100.0), similarity="bhattacharyya", reward_version="v1"
        )
    everything = report.build_table(report.load_runs(root), by="similarity")
    assert "ignored 3 run(s) without a similarity (pearl)" in everything.notes
    runs = report.load_runs(root, algos=["cocoa"])
    table = report.build_table(runs, by="similarity")
    assert table.columns == ["bhattacharyya", "bilinear"]
    assert table.labels == {"bhattacharyya": "Bhattacharyya", "bilinear": "Bilinear"}
    assert table.wins("bhattacharyya", "bilinear") == (2, 0, 3)
    assert "Bhattacharyya beats Bilinear on 2 out of 3 envs (Bilinear wins 1)" in table.notes
    text = report.render(table, "markdown")
    assert "| environment | Bhattacharyya | Bilinear |" in text
    assert "| push | 3.00 [3.00, 3.00] | **4.00** [4.00, 4.00] |" in text
    # with the thesis's Table 5.2 beside it
    ref = report.read_reference(REFERENCE / "thesis_table_5_2.csv")
    table = report.build_table(runs, by="similarity", reference=ref)
    text = report.render(table, "markdown")
    assert "| Bhattacharyya | Bhattacharyya (thesis) | Bilinear | Bilinear (thesis) |" in text
    assert "| soccer | **7.00** [7.00, 7.00] | 153006.8 | 1.00 [1.00, 1.00] | 108311.7 |" in text


def test_table_splits_cocoa_by_similarity_and_notes_duplicates(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "reach", "cocoa", 0, final(1.0), similarity="bhattacharyya")
    write_run(
        root,
        "reach",
        "cocoa",
        0,
        final(1.0),
        similarity="bhattacharyya",
        name="bhattacharyya-seed0",
    )
    write_run(root, "reach", "cocoa", 0, final(2.0), similarity="bilinear", name="bilinear-seed0")
    write_run(root, "reach", "pearl", 0, final(0.5), similarity="bhattacharyya")
    table = report.build_table(report.load_runs(root))
    assert table.columns == ["pearl", "cocoa:bhattacharyya", "cocoa:bilinear"]
    assert table.labels["cocoa:bilinear"] == "CoCOA (bilinear)"
    assert table.cells["reach", "cocoa:bhattacharyya"].n == 1
    duplicate = next(n for n in table.notes if n.startswith("ignored 1 duplicate run"))
    assert duplicate.endswith("reach/cocoa/seed0 (kept bhattacharyya-seed0)")
    assert len(table.improvement) == 2


# ------------------------------------------------------------- ablation across the axes


def ablation_cli(capsys, *args: str) -> str:
    main(["ablate", *args])
    return capsys.readouterr().out


def test_axis_values_read_from_config(tmp_path: Path):
    root = tmp_path / "runs"
    old = write_run(root, "reach", "cocoa", 0, final(1.0), similarity="bilinear")
    chain = write_run(
        root,
        "reach",
        "cocoa",
        1,
        final(1.0),
        similarity="bhattacharyya",
        algo_extra={"objective": "masked", "augment": ["crop", "noise"]},
    )
    pearl = write_run(root, "reach", "pearl", 0, final(1.0), similarity="bhattacharyya")
    rad = write_run(
        root,
        "reach",
        "pearl",
        1,
        final(1.0),
        similarity="bhattacharyya",
        algo_extra={"objective": "none", "augment": ["noise"], "augment_context": True},
    )
    maml = write_run(root, "reach", "maml-trpo", 0, final(1.0))
    read = {p: report.load_run(p) for p in (old, chain, pearl, rad, maml)}
    values = {p: tuple(read[p].axis_value(a) for a in report.AXES) for p in read}
    assert values[old] == ("trajectory", "crop", "bilinear")  # written before the fields
    assert values[chain] == ("masked", "crop+noise", "bhattacharyya")
    assert values[pearl] == ("none", None, None)  # augmentations act on nothing in PEARL
    assert values[rad] == ("none", "noise", None)  # RAD's switch: PEARL's context augmented
    assert values[maml] == (None, None, None)
    assert [read[p].augment_context for p in (old, rad)] == [False, True]
    with pytest.raises(ValueError, match="unknown axis 'kl'"):
        read[old].axis_value("kl")


@pytest.fixture
def objective_runs(tmp_path: Path) -> Path:
    """3 envs x 3 seeds of CoCOA's trajectory objective (config without the field) and of
    masked, PEARL on point-robot (1 seed), and runs an objective ablation must not read."""
    root = tmp_path / "runs"
    values = {  # env: (trajectory by seed, masked by seed)
        "point-robot": ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]),
        "sparse-point-robot": ([5.0, 5.0, 5.0], [1.0, 2.0, 6.0]),
        "cheetah-vel": ([1.0, 1.0, 1.0], [3.0, 3.0, 3.0]),
    }
    for env, (trajectory, masked) in values.items():
        for seed in range(3):
            write_run(root, env, "cocoa", seed, final(trajectory[seed]), similarity="bhattacharyya")
            write_run(
                root,
                env,
                "cocoa",
                seed,
                final(masked[seed]),
                similarity="bhattacharyya",
                name=f"masked-seed{seed}",
                algo_extra={"objective": "masked", "augment": ["crop"]},
            )
    write_run(root, "point-robot", "pearl", 0, final(0.5), similarity="bhattacharyya")
    write_run(  # another objective, RAD's switch, another algorithm: none of them is read
        root,
        "point-robot",
        "cocoa",
        0,
        final(99.0),
        similarity="bhattacharyya",
        name="transition-seed0",
        algo_extra={"objective": "transition", "augment": ["noise"]},
    )
    write_run(
        root,
        "point-robot",
        "cocoa",
        0,
        final(99.0),
        similarity="bhattacharyya",
        name="masked-augctx-seed0",
        algo_extra={"objective": "masked", "augment": ["crop"], "augment_context": True},
    )
    write_run(root, "point-robot", "maml-trpo", 0, final(99.0))
    return root


def test_objective_ablation_hand_computed(objective_runs: Path, capsys):
    runs = report.load_runs(
        objective_runs, objectives=["trajectory", "masked", "none"], augment_context=False
    )
    table = report.build_table(runs, by="objective", columns=["trajectory", "masked", "none"])
    assert table.columns == ["trajectory", "masked", "none"]
    assert table.labels["none"] == "none (PEARL)"
    means = {k: c.mean for k, c in table.cells.items()}
    assert means == {
        ("cheetah-vel", "trajectory"): 1.0,
        ("cheetah-vel", "masked"): 3.0,
        ("point-robot", "trajectory"): 2.0,
        ("point-robot", "masked"): 3.0,
        ("point-robot", "none"): 0.5,
        ("sparse-point-robot", "trajectory"): 5.0,
        ("sparse-point-robot", "masked"): 3.0,
    }
    # seeds 2, 3, 4: a resample of all 2s (or all 4s) has probability 1/27 > 2.5%
    cell = table.cells["point-robot", "masked"]
    assert (cell.low, cell.high, cell.n) == (2.0, 4.0, 3)
    assert table.wins("masked", "trajectory") == (2, 0, 3)
    assert table.wins("trajectory", "none") == (1, 0, 1)
    # the command line: rows envs, columns the values, one win line per pair
    out = ablation_cli(
        capsys, "--runs", str(objective_runs), "--axis", "objective", "--values",
        "trajectory,masked,none",
    )  # fmt: skip
    assert "| environment | trajectory | masked | none (PEARL) |" in out
    assert "| point-robot | 2.00 [1.00, 3.00] | **3.00** [2.00, 4.00] | 0.50 (n=1/3) |" in out
    assert "| sparse-point-robot | **5.00** [5.00, 5.00] | 3.00 [1.00, 6.00] | — |" in out
    assert "- masked beats trajectory on 2 out of 3 envs (trajectory wins 1)" in out
    assert "- trajectory beats none (PEARL) on 1 out of 1 envs (none (PEARL) wins 0)" in out
    assert "- masked beats none (PEARL) on 1 out of 1 envs (none (PEARL) wins 0)" in out
    assert "99.00" not in out and "duplicate" not in out
    # PEARL is a column only when named
    out = ablation_cli(
        capsys, "--runs", str(objective_runs), "--axis", "objective", "--values",
        "masked,trajectory", "--envs", "point-robot",
    )  # fmt: skip
    assert "| environment | masked | trajectory |" in out and "PEARL" not in out
    assert "- masked beats trajectory on 1 out of 1 envs (trajectory wins 0)" in out


def test_augment_ablation_hand_computed(tmp_path: Path, capsys):
    root = tmp_path / "runs"
    values = {  # value: {env: returns by seed}; crop is what a config without the field has
        None: {"point-robot": [1.0, 3.0], "sparse-point-robot": [4.0, 4.0]},
        "noise": {"point-robot": [5.0, 5.0], "sparse-point-robot": [1.0, 2.0]},
        "crop+noise": {"point-robot": [2.0, 4.0], "sparse-point-robot": [6.0, 8.0]},
    }
    for value, by_env in values.items():
        extra = {"augment": value.split("+")} if value else {}
        for env, returns in by_env.items():
            for seed, r in enumerate(returns):
                name = f"aug-{value}-seed{seed}" if value else None
                write_run(
                    root, env, "cocoa", seed, final(r), similarity="bhattacharyya",
                    name=name, algo_extra=extra,
                )  # fmt: skip
    for seed in range(2):  # PEARL: without RAD's switch no augmentation acts; with it, noise
        write_run(root, "point-robot", "pearl", seed, final(0.0), similarity="bhattacharyya")
        write_run(
            root, "point-robot", "pearl", seed, final(7.0), similarity="bhattacharyya",
            name=f"rad-seed{seed}",
            algo_extra={"objective": "none", "augment": ["noise"], "augment_context": True},
        )  # fmt: skip
    args = ["--runs", str(root), "--axis", "augment", "--values", "crop,noise,crop+noise"]
    out = ablation_cli(capsys, *args)
    assert "| environment | crop | noise | crop+noise |" in out
    assert "| point-robot | 2.00 [1.00, 3.00] | **5.00** [5.00, 5.00] | 3.00 [2.00, 4.00] |" in out
    assert (
        "| sparse-point-robot | 4.00 [4.00, 4.00] | 1.50 [1.00, 2.00] | **7.00** [6.00, 8.00] |"
        in out
    )
    assert "- crop beats noise on 1 out of 2 envs (noise wins 1)" in out
    assert "- crop+noise beats crop on 2 out of 2 envs (crop wins 0)" in out
    assert "- noise beats crop+noise on 1 out of 2 envs (crop+noise wins 1)" in out
    # the other axes held fixed: PEARL with RAD's noise, as its own ablation
    out = ablation_cli(
        capsys, "--runs", str(root), "--axis", "augment", "--values", "noise",
        "--objective", "none", "--augment-context",
    )  # fmt: skip
    assert "| point-robot | 7.00 [7.00, 7.00] |" in out and "sparse-point-robot" not in out


def test_similarity_ablation_old_spelling_and_other_objectives(objective_runs: Path, capsys):
    for seed, value in enumerate([4.0, 6.0]):  # bilinear runs on point-robot
        write_run(
            objective_runs, "point-robot", "cocoa", seed, final(value), similarity="bilinear",
            name=f"bilinear-seed{seed}",
        )  # fmt: skip
    root = str(objective_runs)
    default = ablation_cli(capsys, "--runs", root)
    old = ablation_cli(capsys, "--runs", root, "--similarities", "bhattacharyya,bilinear")
    new = ablation_cli(
        capsys, "--runs", root, "--axis", "similarity", "--values", "bhattacharyya,bilinear"
    )
    assert default == old == new
    # CoCOA's objective only: the masked runs (with a similarity too) are not pooled in
    assert "| point-robot | 2.00 [1.00, 3.00] | **5.00** [4.00, 6.00] (n=2/3) |" in new
    assert "| sparse-point-robot | 5.00 [5.00, 5.00] | — |" in new
    assert "- Bilinear beats Bhattacharyya on 1 out of 1 envs (Bhattacharyya wins 0)" in new
    masked = ablation_cli(capsys, "--runs", root, "--objective", "masked")
    assert "| sparse-point-robot | 3.00 [1.00, 6.00] | — |" in masked


@pytest.mark.parametrize(
    "args, message",
    [
        (["--axis", "obj"], "Invalid value for '--axis': 'obj' is not one of"),
        (["--axis", "objective"], "--axis objective needs --values, e.g. --values"),
        (["--axis", "augment"], "--axis augment needs --values"),
        (
            ["--axis", "objective", "--values", "trajectory,maskd"],
            "unknown objective 'maskd'; did you mean masked?",
        ),
        (["--axis", "augment", "--values", "crop+nois"], "known: crop, noise"),
        (["--values", "no-such-sim"], "unknown similarity 'no-such-sim'"),
        (
            ["--axis", "objective", "--values", "masked", "--similarities", "bilinear"],
            "--similarities is the similarity axis's values; with --axis objective",
        ),
        (["--values", "bilinear", "--similarities", "bilinear"], "not both"),
        (
            ["--axis", "objective", "--values", "masked", "--objective", "masked"],
            "--objective fixes the objective of the runs",
        ),
        (
            ["--axis", "augment", "--values", "noise", "--reference"],
            "--reference: the thesis publishes an ablation of the similarity only",
        ),
    ],
)
def test_bad_ablation_axis_or_value_is_one_line(objective_runs: Path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["ablate", "--runs", str(objective_runs), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_pooled_configs_that_differ_are_reported(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "reach", "pearl", 0, final(1.0))
    other = write_run(root, "reach", "pearl", 1, final(1.0))
    import json

    cfg = json.loads((other / "config.json").read_text())
    cfg["algo_config"]["kl_lambda"] = 0.5
    (other / "config.json").write_text(json.dumps(cfg))
    table = report.build_table(report.load_runs(root))
    assert "PEARL on reach pools runs whose configs differ in: algo_config.kl_lambda" in table.notes


def test_success_metric(tmp_path: Path):
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(
            root, "reach", "cocoa", seed, final(5.0), success=[0.0, 0.2, 0.5, 0.8 + 0.1 * seed]
        )
    write_run(root, "point-robot", "cocoa", 0, final(5.0))
    table = report.build_table(report.load_runs(root), metric="success")
    assert table.envs == ["reach"]
    assert table.cells["reach", "cocoa"].mean == pytest.approx(0.85)
    assert "no meta-test success rate recorded for: point-robot" in table.notes
    assert report.render(table, "markdown").startswith("Meta-test success rate at 3,000")
    ref = report.read_reference(REFERENCE / "thesis_table_5_1.csv")
    table = report.build_table(report.load_runs(root), metric="success", reference=ref)
    assert not table.reference  # the thesis publishes returns only
    assert "reference: the published tables hold returns, not success rates" in table.notes
    with pytest.raises(ValueError, match="no runs with meta-test success rate"):
        report.build_table(report.load_runs(root, envs=["point-robot"]), metric="success")
    with pytest.raises(ValueError, match="unknown metric 'reward'"):
        report.build_table(report.load_runs(root), metric="reward")


# ------------------------------------------------------------------------------ bad input


def test_bad_input_is_one_clear_value_error(tmp_path: Path):
    with pytest.raises(ValueError, match="no runs directory at"):
        report.load_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no runs found under"):
        report.load_runs(tmp_path / "empty")
    root = tmp_path / "runs"
    run = write_run(root, "reach", "pearl", 0, final(1.0))
    with pytest.raises(ValueError, match="no runs found under .* matching envs push"):
        report.load_runs(root, envs=["push"])
    (run / "progress.csv").write_text("iteration,env_steps,meta_test/return\n0,zero,1.0\n")
    with pytest.raises(
        ValueError, match=r"corrupt .*progress.csv: non-numeric value in column 'env_steps'"
    ):
        report.load_runs(root)
    (run / "progress.csv").write_text("iteration,foo\n0,1\n")
    with pytest.raises(ValueError, match=r"corrupt .*progress.csv: no column env_steps"):
        report.load_runs(root)
    (run / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupt .*config.json"):
        report.load_runs(root)


def test_run_without_meta_test_yet_is_reported(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "reach", "pearl", 0, final(1.0))
    young = write_run(root, "reach", "pearl", 1, final(1.0), status="running")
    (young / "progress.csv").write_text("")
    table = report.build_table(report.load_runs(root))
    assert table.cells["reach", "pearl"].n == 1
    assert any(n.startswith("no meta-test yet (status running)") for n in table.notes)


def test_cli_errors_are_one_line(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["table", "--runs", str(tmp_path / "nowhere")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no runs directory at") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["table", "--runs", str(tmp_path), "--metric", "reward"])
    assert exc.value.code == 2
    assert "Invalid value for '--metric'" in capsys.readouterr().err


# -------------------------------------------------------------------------------- CLI


def test_cli_table_ablate_plot(runs_root: Path, tmp_path: Path, capsys):
    main(["table", "--runs", str(runs_root), "--algos", "cocoa,pearl", "--reference"])
    out = capsys.readouterr().out
    assert "| environment | CoCOA | PEARL | CoCOA vs PEARL: winner here / thesis |" in out
    assert (
        "| reach | 15.00 [10.00, 20.00] (n=2/3) | **40.00** [30.00, 50.00] | PEARL / CoCOA |" in out
    )
    assert "- thesis values not compared on push, reach: these runs use Metaworld v2" in out
    main(
        [
            "table",
            "--runs",
            str(runs_root),
            "--envs",
            "reach",
            "--at-steps",
            "1000",
            "--format",
            "latex",
            "--output",
            str(tmp_path / "t.tex"),
        ]
    )
    tex = (tmp_path / "t.tex").read_text()
    assert "\\caption{Meta-test return at 1,000 env steps" in tex
    assert "point-robot" not in tex
    main(["ablate", "--runs", str(runs_root), "--format", "csv"])
    captured = capsys.readouterr()
    assert captured.out.startswith("env,Bhattacharyya mean,")
    assert "note: missing: Bilinear on point-robot, Bilinear on reach" in captured.err
    main(["plot", "--runs", str(runs_root), "--output", str(tmp_path / "plots" / "curves.png")])
    for suffix in (".png", ".pdf"):
        assert (tmp_path / "plots" / f"curves{suffix}").stat().st_size > 1000
    assert (tmp_path / "plots" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "plots" / "curves.pdf").read_bytes()[:5] == b"%PDF-"


# ------------------------------------------------------------------------------- curves


def test_learning_curves_align_seeds_without_extrapolating(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "reach", "pearl", 0, [(0, 0.0), (1000, 10.0), (2000, 20.0), (3000, 30.0)])
    write_run(root, "reach", "pearl", 1, [(0, 0.0), (1500, 30.0), (2500, 50.0)])
    data, notes = report.learning_curves(report.load_runs(root))
    seed0 = data[data["seed"] == 0].set_index("env_steps")["value"]
    seed1 = data[data["seed"] == 1].set_index("env_steps")["value"]
    # union of both seeds' meta-test steps, cut where the shorter run ends
    assert list(seed0.index) == [0, 1000, 1500, 2000, 2500]
    assert list(seed1.index) == list(seed0.index)
    assert seed0[1500] == pytest.approx(15.0)  # interpolated between 1000 and 2000
    assert seed1[1000] == pytest.approx(20.0)  # interpolated between 0 and 1500
    assert seed1[2500] == pytest.approx(50.0)
    assert any("curve ends at 2,500 env steps" in n for n in notes)


def test_plot_writes_png_and_pdf(runs_root: Path, tmp_path: Path):
    runs = report.load_runs(runs_root, algos=["cocoa"])
    written, _ = report.plot_learning_curves(
        runs, tmp_path / "abl", metric="return", hue="similarity"
    )
    assert [p.name for p in written] == ["abl.png", "abl.pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    with pytest.raises(ValueError, match="--output must end in .png or .pdf"):
        report.plot_learning_curves(runs, tmp_path / "x.svg")


def test_reporting_does_not_import_training_code():
    code = (
        "import sys, cocoa.report, cocoa.report_cli\n"
        "bad = [m for m in ('torch', 'cocoa.trainer', 'cocoa.pearl') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_online_curves_from_pearl_protocol_evals(tmp_path: Path):
    curves = {("pearl", 0): [-20.0, -12.0, -10.0], ("pearl", 1): [-18.0, -10.0, -8.0]}
    for (algo, seed), curve in curves.items():
        run_dir = write_run(tmp_path, "point-robot", algo, seed, final(-10.0))
        write_json(run_dir / "evals" / "000003.json", {"env_steps": 3000, "return": curve[-1]})
        write_json(
            run_dir / "evals" / "pearl-000003000.json",
            {"env_steps": 3000, "online_returns": curve, "return": curve[-1]},
        )
    write_run(tmp_path, "point-robot", "oracle-sac", 0, final(-5.0))  # thesis evals only
    runs = report.load_runs(tmp_path)
    data, notes = report.online_curves(runs)
    assert sorted(set(data["hue"])) == ["PEARL"]
    mean = data.groupby("trajectory")["value"].mean()
    assert mean.tolist() == pytest.approx([-19.0, -11.0, -9.0])
    assert any("oracle-sac" in n and "no online curve" in n for n in notes)
    written, _ = report.plot_learning_curves(runs, tmp_path / "online.png", online=True)
    assert all(p.stat().st_size > 1000 for p in written)
    with pytest.raises(ValueError, match="no run has an online curve"):
        report.online_curves(report.load_runs(tmp_path, algos=["oracle-sac"]))


def test_plot_data_success_panels_markers_and_normalised_aggregate(tmp_path: Path):
    root = tmp_path / "runs"
    for seed in range(2):
        # reach: oracle-SAC returns 0, 10|30, 20|40 (mean 0, 20, 30); PEARL -10, 0, 10
        write_run(
            root,
            "reach",
            "oracle-sac",
            seed,
            [(0, 0.0), (1000, 10.0 + 20 * seed), (2000, 20.0 + 20 * seed)],
            success=[0.0, 0.5, 1.0],
        )
        write_run(
            root,
            "reach",
            "pearl",
            seed,
            [(0, -10.0), (1000, 0.0), (2000, 10.0)],
            success=[0.0, 0.2, 0.4 + 0.2 * seed],
            status="finished" if seed == 0 else "running",
        )
        # point-robot (no success): oracle 0, 2, 4, 6; PEARL 0, 1, 2, 3
        write_run(root, "point-robot", "oracle-sac", seed, final(6.0))
        write_run(root, "point-robot", "pearl", seed, final(3.0))
    runs = report.load_runs(root)
    data = report.curves.plot_data(runs)  # metric "both"
    assert data.metrics == ["return", "success"]
    success = data.curves[data.curves["metric"] == "success"]
    assert set(success["env"]) == {"reach"}  # point robots record no success
    mean = success[success["hue"] == "PEARL"].groupby("env_steps")["value"].mean()
    assert mean.tolist() == pytest.approx([0.0, 0.2, 0.5])
    assert data.reward_versions == {"reach": "v2"}
    # the unfinished PEARL seed on reach: an × at the last point of both of its curves
    markers = data.markers.set_index("metric")
    assert list(markers["env"]) == ["reach", "reach"] and set(markers["hue"]) == {"PEARL"}
    assert markers.loc["return", "value"] == 10.0 and markers.loc["success", "value"] == 0.5
    assert (markers["env_steps"] == 2000).all()
    # normalised score (R(t) - R(0)) / (O(t) - R(0)): reach 10/30 and 20/40; point-robot
    # 1/2 and 2/4; at step 0 oracle and untrained coincide on point-robot: left out
    agg = data.aggregate.set_index("env_steps")
    assert list(agg.index) == [1000, 2000] and set(agg["hue"]) == {"PEARL"}
    # IQM of four scores, two of each env: the mean of the middle two
    assert agg.loc[1000, "iqm"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert agg.loc[2000, "iqm"] == pytest.approx(0.5)
    # every seed of an env has the same score here: the interval collapses
    assert (agg.loc[2000, "low"], agg.loc[2000, "high"]) == pytest.approx((0.5, 0.5))
    assert (agg["runs"] == 4).all() and (agg["envs"] == 2).all()
    assert any("left out env steps" in n and ": 0" in n for n in data.notes)
    written, _ = report.plot_learning_curves(runs, tmp_path / "plots" / "all.png")
    assert [p.name for p in written] == ["all.png", "all.pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    # one metric only
    data = report.curves.plot_data(runs, metric="return")
    assert data.metrics == ["return"]


def test_normalised_scores_hand_computed_and_no_oracle_note(tmp_path: Path):
    root = tmp_path / "runs"
    write_run(root, "push", "oracle-sac", 0, [(0, 2.0), (1000, 12.0), (2000, 22.0)])
    write_run(root, "push", "oracle-sac", 1, [(0, 2.0), (1000, 8.0), (2000, 18.0)])
    write_run(
        root, "push", "cocoa", 0, [(0, 0.0), (500, 1.0), (1000, 5.0), (2000, 7.0), (3000, 9.0)]
    )
    frame, notes = report.curves.normalised_scores(report.load_runs(root))
    # oracle mean 2, 10, 20 at 0, 1000, 2000; CoCOA's meta-test steps up to where the
    # oracle's curve ends. At step 0 the oracle is 2 above CoCOA's R(0) = 0, less than a
    # quarter of its best gain (20): a denominator of noise, left out with a note
    values = frame.set_index("env_steps")["value"]
    assert report.curves.MIN_ORACLE_GAIN == 0.25
    assert list(values.index) == [500, 1000, 2000]
    assert values[500] == pytest.approx(1.0 / 6.0)  # oracle interpolated to 6 at 500: 6 >= 5
    assert values[1000] == pytest.approx(5.0 / 10.0)
    assert values[2000] == pytest.approx(7.0 / 20.0)
    assert notes == [
        "normalised score of CoCOA: left out env steps where oracle-SAC is less than 0.25 of "
        "its best above a run's untrained return: 0"
    ]
    no_oracle = report.load_runs(root, algos=["cocoa"])
    data = report.curves.plot_data(no_oracle)
    assert data.aggregate.empty
    assert "no aggregate panel: no oracle-SAC runs to normalise the scores against" in data.notes
    written, notes = report.plot_learning_curves(no_oracle, tmp_path / "solo.pdf")
    assert all(p.stat().st_size > 1000 for p in written)


# ------------------------------------------------------------- curves by a contrastive axis


@pytest.fixture
def axis_runs(tmp_path: Path) -> Path:
    """point-robot, 2 seeds each unless said: oracle-SAC 0, 10, 20 at 0, 1k, 2k env steps;
    CoCOA's trajectory objective (config without the objective and augment fields: crop)
    -10, 0, 5; masked with crop+noise -10, 5, 20; transition with noise (seed 0) -10, -5, 0;
    PEARL (objective none, no augmentation acts) -10, -5, 0; PEARL with RAD's noise (seed 2)
    -10, 0, 10; MAML (seed 0)."""
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(root, "point-robot", "oracle-sac", seed, [(0, 0.0), (1000, 10.0), (2000, 20.0)])
        write_run(
            root, "point-robot", "cocoa", seed, [(0, -10.0), (1000, 0.0), (2000, 5.0)],
            similarity="bhattacharyya",
        )  # fmt: skip
        write_run(
            root, "point-robot", "cocoa", seed, [(0, -10.0), (1000, 5.0), (2000, 20.0)],
            similarity="bhattacharyya", name=f"masked-aug-crop-noise-seed{seed}",
            algo_extra={"objective": "masked", "augment": ["crop", "noise"]},
        )  # fmt: skip
        write_run(
            root, "point-robot", "pearl", seed, [(0, -10.0), (1000, -5.0), (2000, 0.0)],
            similarity="bhattacharyya",
        )  # fmt: skip
    write_run(
        root, "point-robot", "cocoa", 0, [(0, -10.0), (1000, -5.0), (2000, 0.0)],
        similarity="bhattacharyya", name="transition-aug-noise-seed0",
        algo_extra={"objective": "transition", "augment": ["noise"]},
    )  # fmt: skip
    write_run(
        root, "point-robot", "pearl", 2, [(0, -10.0), (1000, 0.0), (2000, 10.0)],
        similarity="bhattacharyya", name="aug-noise-augctx-seed2",
        algo_extra={"objective": "none", "augment": ["noise"], "augment_context": True},
    )  # fmt: skip
    write_run(root, "point-robot", "maml-trpo", 0, [(0, -10.0), (1000, 50.0), (2000, 50.0)])
    return root


def _algos_in(frame) -> set[str]:
    return {Path(run).parent.name for run in frame["run"]}


def test_plot_data_by_objective(axis_runs: Path):
    data = report.curves.plot_data(report.load_runs(axis_runs), metric="return", hue="objective")
    curves = data.curves
    # one hue per objective present; PEARL's is none; oracle-SAC and MAML have none
    assert set(curves["hue"]) == {"trajectory", "masked", "transition", "none (PEARL)"}
    assert _algos_in(curves) == {"cocoa", "pearl"}
    assert "curves leave out 3 run(s) without a context objective (maml-trpo, oracle-sac)" in (
        data.notes
    )
    seeds = curves.groupby("hue")["seed"].nunique().to_dict()
    assert seeds == {"trajectory": 2, "masked": 2, "transition": 1, "none (PEARL)": 3}
    masked = curves[curves["hue"] == "masked"].groupby("env_steps")["value"].mean()
    assert masked.tolist() == pytest.approx([-10.0, 5.0, 20.0])
    # the aggregate panel: scores normalised by oracle-SAC (its mean 0, 10, 20), which is
    # no curve itself: (R(t) - R(0)) / (O(t) - R(0))
    agg = data.aggregate.set_index(["hue", "env_steps"])
    assert set(data.aggregate["hue"]) == set(curves["hue"])
    assert agg.loc[("masked", 1000), "iqm"] == pytest.approx(15 / 20)
    assert agg.loc[("masked", 2000), "iqm"] == pytest.approx(30 / 30)
    assert agg.loc[("trajectory", 2000), "iqm"] == pytest.approx(15 / 30)
    assert agg.loc[("transition", 1000), "iqm"] == pytest.approx(5 / 20)
    assert (agg.xs(0, level="env_steps")["iqm"] == 0.0).all()  # untrained: 0
    assert agg.loc[("none (PEARL)", 2000), "runs"] == 3
    assert not any("no aggregate panel" in n for n in data.notes)
    frame, _ = report.curves.normalised_scores(report.load_runs(axis_runs), hue="objective")
    assert _algos_in(frame) == {"cocoa", "pearl"}


def test_plot_data_by_augment(axis_runs: Path, tmp_path: Path):
    runs = report.load_runs(axis_runs)
    data = report.curves.plot_data(runs, metric="return", hue="augment")
    curves = data.curves
    # crop: the trajectory runs, whose configs predate the field; noise: transition and
    # PEARL with RAD's switch; PEARL without it has no augmentation that acts
    assert set(curves["hue"]) == {"crop", "crop+noise", "noise"}
    noise = curves[curves["hue"] == "noise"]
    assert sorted(Path(r).name for r in set(noise["run"])) == [
        "aug-noise-augctx-seed2",
        "transition-aug-noise-seed0",
    ]
    assert _algos_in(curves) == {"cocoa", "pearl"}
    assert not any(Path(r).name == "seed0" and "pearl" in r for r in curves["run"])
    assert (
        "curves leave out 5 run(s) without augmentations that act (maml-trpo, oracle-sac, pearl)"
        in data.notes
    )
    agg = data.aggregate.set_index(["hue", "env_steps"])
    assert set(data.aggregate["hue"]) == {"crop", "crop+noise", "noise"}
    assert agg.loc[("crop+noise", 2000), "iqm"] == pytest.approx(1.0)
    assert agg.loc[("crop", 1000), "iqm"] == pytest.approx(0.5)
    assert agg.loc[("noise", 2000), "runs"] == 2
    # the plot itself: one legend entry per augmentation, in the thesis's order first
    assert report.curves._hue_order(curves["hue"], "augment") == ["crop", "crop+noise", "noise"]
    written, _ = report.plot_learning_curves(runs, tmp_path / "aug.png", hue="augment")
    assert all(p.stat().st_size > 1000 for p in written)


def test_bad_hue_is_one_line(axis_runs: Path, tmp_path: Path, capsys):
    runs = report.load_runs(axis_runs)
    with pytest.raises(
        ValueError, match=r"^unknown hue 'kl'; choose from algo, objective, augment, similarity$"
    ):
        report.curves.plot_data(runs, hue="kl")
    with pytest.raises(ValueError, match="no run has augmentations that act to colour"):
        report.learning_curves(report.load_runs(axis_runs, algos=["maml-trpo"]), hue="augment")
    out = str(tmp_path / "x.png")
    for args, message in (
        (["--hue", "kl"], "Invalid value for '--hue': 'kl' is not one of 'algo', 'objective'"),
        (["--objectives", "maskd"], "unknown objective 'maskd'; did you mean masked?"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["plot", "--runs", str(axis_runs), "--output", out, *args])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_plot_hue_choices_are_the_curves_hues():
    from cocoa.report_cli import plot

    hue = next(p for p in plot.params if p.name == "hue")
    assert tuple(hue.type.choices) == report.curves.HUES
    assert hue.default == report.curves.DEFAULT_HUE


def test_cli_plot_by_objective_with_objective_filter(axis_runs: Path, tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from cocoa.cli import cli

    drawn = []
    plot_data = report.curves.plot_data
    monkeypatch.setattr(
        report.curves, "plot_data", lambda *a, **k: drawn.append(plot_data(*a, **k)) or drawn[-1]
    )
    out = tmp_path / "plots" / "objectives.png"
    result = CliRunner().invoke(
        cli,
        ["plot", "--runs", str(axis_runs), "--hue", "objective", "--objectives",
         "masked,trajectory", "--output", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert f"wrote {out}, {out.with_suffix('.pdf')}" in result.stdout
    (data,) = drawn
    # the filter keeps masked and trajectory; oracle-SAC is read beside them to normalise
    assert set(data.curves["hue"]) == {"masked", "trajectory"}
    assert set(data.aggregate["hue"]) == {"masked", "trajectory"}
    agg = data.aggregate.set_index(["hue", "env_steps"])["iqm"]
    assert agg[("masked", 2000)] == pytest.approx(1.0)
    assert agg[("trajectory", 2000)] == pytest.approx(0.5)
    assert "note: curves leave out 2 run(s) without a context objective (oracle-sac)" in (
        result.stderr
    )
    assert "no aggregate panel" not in result.stderr
