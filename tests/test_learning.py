"""PEARL and CoCOA learn: the quick preset on point-robot, fixed seed, a few CPU minutes each.

Measured (seed 0, 40k env steps, quick preset): the untrained agent's meta-test return is
-16.29 (it barely moves, which on uniform goals in [-1, 1]² is what an agent that cannot
infer the goal does best); at 40k steps PEARL reached -12.10 (+4.2) and CoCOA -14.05 (+2.2),
each in about 3 minutes. The curves are noisy from one meta-test to the next (CoCOA's went
-12.79, -13.82, -15.24, -14.05 over its last four), so the margin below is about half the
smaller improvement; the untrained agent's return varies by about 0.1 across seeds.
"""

import pandas as pd
import pytest

from cocoa.config import make_run_config
from cocoa.trainer import train

STEPS = 40_000
MARGIN = 1.2


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["pearl", "cocoa"])
def test_quick_preset_learns_point_robot(algo, tmp_path):
    cfg = make_run_config(
        env="point-robot",
        algo=algo,
        seed=0,
        steps=STEPS,
        preset="quick",
        protocol="thesis",
        device="cpu",
        similarity=None,
        overrides=None,
    )
    final = train(cfg, tmp_path, progress=False)
    curve = pd.read_csv(tmp_path / "progress.csv")["meta_test/return"].dropna()
    untrained = curve.iloc[0]
    assert final.mean_return == pytest.approx(curve.iloc[-1])
    assert final.mean_return > untrained + MARGIN, curve.tolist()
