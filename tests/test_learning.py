"""PEARL and CoCOA learn to adapt: the quick preset on point-robot, seed 0, 60k env steps.

The score is the mean of the five meta-tests in (40k, 60k], which smooths the meta-test's noise
(about ±1 from one to the next), normalised as the suite reports it: (R − R_untrained) /
(R_oracle − R_untrained), with the run's own step-0 meta-test as R_untrained and oracle-SAC's
seed-0 score from the recorded reference (``results/reference/reproduce/point-robot.json``).

Thresholds come from that reference: the lower edge of the 95% prediction interval for one new
seed's normalised score, from the three recorded seeds of the same algorithm
(``cocoa.reproduce.band``): PEARL 0.50 (0.48–0.50) gives 0.45, CoCOA 0.54 (0.54–0.54) gives
0.52. Both lie above the best agent that cannot adapt (the scripted centre agent, 0.27 on
seed 0's starts), so a learner that stops adapting fails.
"""

import pandas as pd
import pytest

from cocoa.config import make_run_config
from cocoa.envs import get_family
from cocoa.evaluator import evaluate, get_protocol
from cocoa.reproduce import band, get_set, read_reference
from cocoa.scripted import ScriptedLearner
from cocoa.task_samplers import TaskSampler
from cocoa.trainer import train

STEPS = 60_000
WINDOW = 20_000


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["pearl", "cocoa"])
def test_quick_preset_learns_to_adapt_on_point_robot(algo, tmp_path):
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
    progress = pd.read_csv(tmp_path / "progress.csv")
    tests = progress[["env_steps", "meta_test/return"]].dropna()
    assert final.mean_return == pytest.approx(tests["meta_test/return"].iloc[-1])
    score = tests[tests["env_steps"] > STEPS - WINDOW]["meta_test/return"].mean()

    reference = read_reference(get_set("point-robot"))["algos"]

    def normalised(score, untrained, seed):
        oracle = reference["oracle-sac"]["seeds"][str(seed)]["score"]
        return (score - untrained) / (oracle - untrained)

    threshold = band(
        [
            normalised(ref["score"], ref["curve"][0][1], int(seed))
            for seed, ref in reference[algo]["seeds"].items()
        ],
        k=1,
    )[0]
    family = get_family("point-robot")
    centre = evaluate(
        ScriptedLearner("centre"),
        family,
        TaskSampler(family, 0).test_tasks(),
        get_protocol("thesis", family),
        seed=0,
    ).mean_return
    untrained = tests["meta_test/return"].iloc[0]
    assert centre == pytest.approx(-16.54, abs=0.01)
    assert threshold > normalised(centre, untrained, 0)
    assert normalised(score, untrained, 0) > threshold, tests.values.tolist()
