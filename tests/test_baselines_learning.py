"""The baselines learn: on ``point-robot`` their quick preset, meta-trained for a fixed budget
with a fixed seed, beats the untrained agent's meta-test return (thesis protocol: 1
exploration episode, then 3 evaluation episodes, on each of the 20 test tasks). The
meta-learners must also beat the scripted ``centre`` agent on the same tasks and starts: it
walks to the origin whatever the task, the best an agent can do without adapting, so only an
agent that reads the task from its exploration episode gets above it.

Margins come from measured runs (several training seeds; each margin well inside the
smallest measured gain); the numbers are next to each test. On point robots the meta-test
is a deterministic function of the weights (exploration noise is keyed by seed, env steps
and task), so a fixed seed gives the same numbers on the same machine.

Also: each baseline runs through the trainer and writes its metrics to ``progress.csv``.
"""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch

from cocoa.algorithms import get_algorithm
from cocoa.baselines import maml_trpo, oracle_sac, rl2_ppo
from cocoa.config import RunConfig
from cocoa.envs import get_family
from cocoa.evaluator import evaluate, get_protocol
from cocoa.scripted import scripted_results
from cocoa.task_samplers import TaskSampler
from cocoa.trainer import train


def meta_test_return(learner, family, tasks) -> float:
    return evaluate(learner, family, tasks, get_protocol("thesis", family)).mean_return


def untrained_and_trained(algo: str, steps: int, seed: int = 0) -> tuple[float, float]:
    family = get_family("point-robot")
    sampler = TaskSampler(family, 0)
    spec = get_algorithm(algo)
    learner = spec.build(
        spec.preset(family, "quick"), family, sampler.train_tasks(), torch.device("cpu"), seed
    )
    before = meta_test_return(learner, family, sampler.test_tasks())
    while learner.env_steps < steps:
        learner.train_iteration()
    return before, meta_test_return(learner, family, sampler.test_tasks())


def best_without_adapting() -> float:
    """The scripted ``centre`` agent's return on the test tasks and starts of seed 0."""
    family = get_family("point-robot")
    tasks = TaskSampler(family, 0).test_tasks()
    return scripted_results(family, tasks, get_protocol("thesis", family))["centre"].mean_return


def test_maml_trpo_learns_to_adapt():
    # measured at 100k steps (random-start point robot), training seeds 0–2: −20.49 → −10.84,
    # −24.17 → −12.28, −20.81 → −11.80; standing still scores −20.60 and the centre agent
    # −16.54 on these tasks
    before, after = untrained_and_trained("maml-trpo", steps=100_000)
    assert after > before + 1.0, (before, after)
    assert after > best_without_adapting(), after


def test_oracle_sac_learns():
    # measured at 20k steps on the random-start robot with the quick preset (PEARL's point
    # schedule), training seeds 0–2: gains 14.23, 14.32, 14.12 (seed 0: −20.60 → −6.37)
    before, after = untrained_and_trained("oracle-sac", steps=20_000)
    assert after > before + 6.0, (before, after)


@pytest.mark.slow
def test_rl2_ppo_learns():
    # RL² is slow to learn (≈6 min here). On the origin-start point robot it measured, at 250k
    # steps, training seeds 0–2: gains 6.35, 2.79, 3.08. On PEARL's random-start robot, seed
    # 0: −20.59 → −16.58 at 250k, which is the centre agent's −16.54: at this budget RL² has
    # learnt to walk to the middle, not yet to adapt, so this test checks learning only
    before, after = untrained_and_trained("rl2-ppo", steps=250_000)
    assert after > before + 1.5, (before, after)


SMALL = {  # (learner class, overrides for a few iterations' worth of data)
    "maml-trpo": (maml_trpo.MamlTrpo, {"meta_batch_size": 4, "outer_episodes": 2}),
    "rl2-ppo": (rl2_ppo.Rl2Ppo, {"meta_batch_size": 4, "epochs": 2}),
    "oracle-sac": (
        oracle_sac.OracleSac,
        {"initial_steps": 20, "num_train_steps": 10, "meta_batch": 4},
    ),
}


@pytest.mark.parametrize("algo", list(SMALL))
def test_runs_through_the_trainer(algo, tmp_path):
    family = get_family("point-robot")
    learner_cls, overrides = SMALL[algo]
    algo_config = dataclasses.replace(get_algorithm(algo).preset(family, "quick"), **overrides)
    cfg = RunConfig(
        env="point-robot", algo=algo, steps=600, eval_interval=300, algo_config=algo_config
    )
    train(cfg, tmp_path / "run", progress=False)
    with (tmp_path / "run" / "progress.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-len(learner_cls.metric_names) :] == list(learner_cls.metric_names)
    assert int(rows[-1]["env_steps"]) >= 600
    assert rows[-1]["meta_test/return"] != ""
    assert all(rows[-1][name] != "" for name in learner_cls.metric_names)
