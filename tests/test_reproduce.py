"""cocoa reproduce on synthetic run directories: scores, bands, pass/fail, recording."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_report import write_run

from cocoa import reproduce as rep
from cocoa.cli import main

SET = rep.ReproduceSet("tiny", "point-robot", ("pearl", "oracle-sac"), steps=4000, window=2000)


def curve(final: float) -> list[tuple[int, float]]:
    """Meta-tests every 1000 steps from −20 to ``final`` at 3000 and 4000 steps."""
    return [(0, -20.0), (1000, -16.0), (2000, -14.0), (3000, final), (4000, final)]


@pytest.fixture
def reference_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(rep, "REPRODUCE_DIR", tmp_path / "reference")
    monkeypatch.setitem(rep.SETS, "tiny", SET)
    return tmp_path / "reference"


def test_band_is_the_t_prediction_interval():
    low, high = rep.band([1.0, 2.0, 3.0], k=1)
    # mean 2, s = 1, t(0.975, 2) = 4.3027, √(1 + 1/3) = 1.1547
    assert (low, high) == pytest.approx((2 - 4.9683, 2 + 4.9683), abs=1e-3)
    low3, high3 = rep.band([1.0, 2.0, 3.0], k=3)  # the mean of 3 new seeds: narrower
    assert high3 - low3 == pytest.approx(2 * 4.3027 * (2 / 3) ** 0.5, abs=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        rep.band([1.0], k=1)


def test_run_score_is_the_mean_over_the_window(tmp_path):
    from cocoa.report import load_run

    run = load_run(write_run(tmp_path, "point-robot", "pearl", 0, curve(-10.0)))
    # meta-tests inside (2000, 4000]: -10 at 3000 and 4000
    assert rep.run_score(run, 2000, 4000) == pytest.approx(-10.0)
    assert rep.run_score(run, 3000, 4000) == pytest.approx((-14 - 10 - 10) / 3)
    assert rep.run_score(run, 2000, 5000) is None  # the budget not reached


def test_record_then_check_pass_and_fail(tmp_path, reference_dir):
    refs = tmp_path / "refs"
    for seed, final in enumerate([-11.0, -12.0, -13.0]):
        write_run(refs, "point-robot", "pearl", seed, curve(final))
    for seed, final in enumerate([-6.0, -6.5]):
        write_run(refs, "point-robot", "oracle-sac", seed, curve(final))
    reference = rep.record_reference(SET, refs, "synthetic")
    assert reference["algos"]["pearl"]["seeds"]["1"]["score"] == pytest.approx(-12.0)
    assert json.loads((reference_dir / "tiny.json").read_text())["source"] == "synthetic"

    mine = tmp_path / "tiny"  # where `cocoa reproduce tiny --out tmp_path` looks
    write_run(mine, "point-robot", "pearl", 0, curve(-12.5))  # inside PEARL's band
    write_run(mine, "point-robot", "oracle-sac", 0, curve(-12.0))  # far below the oracle's
    rows = {r.algo: r for r in rep.check(SET, mine)}
    assert rows["pearl"].passed and rows["pearl"].score == pytest.approx(-12.5)
    assert (rows["pearl"].low, rows["pearl"].high) == pytest.approx(
        rep.band([-11.0, -12.0, -13.0], 1)
    )
    assert not rows["oracle-sac"].passed
    assert rows["pearl"].untrained == -20.0
    # (−12.5 + 20) / (−12 + 20): PEARL against oracle-SAC at the same budget
    assert rep.normalised(list(rows.values()))["pearl"] == pytest.approx(7.5 / 8)
    text = rep.render(SET, rows.values(), {"still": -20.0, "optimal": -5.0})
    assert "PASS" in text and "FAIL" in text
    assert "0.94" in text and f"{(-12.5 + 20) / 15:.2f}" in text

    # through the CLI: the table, a plot, exit 1 because one row fails
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "tiny", "--out", str(tmp_path), "--check-only"])
    assert exit_info.value.code == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "tiny", "--out", str(tmp_path), "--record", "x"])
    assert exit_info.value.code == 2  # under OUT/tiny there are no runs


def test_reproduce_bad_input(tmp_path, reference_dir, capsys):
    for argv in (["reproduce", "nope"], ["reproduce", "tiny", "--check-only"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:")


def test_every_shipped_set_has_a_reference():
    for s in rep.SETS.values():
        if s.name == "tiny":
            continue
        reference = rep.read_reference(s)
        assert set(reference["algos"]) == set(s.algos)
        assert reference["steps"] == s.steps and reference["source"]
        for algo in s.algos:
            assert len(reference["algos"][algo]["seeds"]) >= 2


def test_a_success_set_scores_the_success_rate(tmp_path):
    from cocoa.report import load_run

    s = rep.ReproduceSet(
        "tiny-sparse", "sparse-point-robot", ("pearl",), 4000, 2000, metric="success"
    )
    run = load_run(
        write_run(
            tmp_path,
            "sparse-point-robot",
            "pearl",
            0,
            curve(-10.0),
            success=[0, 0.1, 0.2, 0.5, 0.7],
        )
    )
    # success at the meta-tests inside (2000, 4000]: 0.5 at 3000 and 0.7 at 4000
    assert rep.run_score(run, s.window, s.steps, s.metric) == pytest.approx(0.6)
    assert rep.run_score(run, s.window, s.steps) == pytest.approx(-10.0)  # return by default


def test_scripted_bounds_score_the_sets_metric():
    success = replace(rep.get_set("sparse-point-robot"), metric="success")
    sparse = rep.scripted_bounds(success)
    assert sparse["still"] == 0.0 and sparse["optimal"] == 1.0  # success rates
    assert 0.0 < sparse["posterior-sampling"] < 1.0
    returns = rep.scripted_bounds(rep.get_set("sparse-point-robot"))
    assert returns["still"] == 0.0 < returns["posterior-sampling"] < returns["optimal"]
    dense = rep.scripted_bounds(rep.get_set("point-robot"))
    assert dense["still"] < dense["centre"] < dense["line"] <= dense["optimal"] + 1e-6 < 0.0
    assert rep.scripted_bounds(rep.ReproduceSet("c", "cheetah-vel", ("pearl",), 1, 1)) == {}
