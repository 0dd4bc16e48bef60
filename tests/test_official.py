"""Metaworld's own evaluator through ``cocoa.official``, beside our ``metaworld-v3`` protocol.

A scripted learner stands in for a trained one: its policy is Metaworld's own scripted reach
policy, given the goal from the task (the ML1 observation hides it). On every goal both
evaluators agree (success 1.0), and the episodes the adapter hands to ``adapt`` are the ones our
rollout collects. On 1 goal in 5, Metaworld's count reads 1.0 where the true per-goal rate is
0.2: the solved goal ends its episodes at success, resets, and supplies all 3 counted episodes.

Kept short: 5 goals, 150-step episodes, 1 adaptation episode (the scripted policy reaches the
goal in well under 50 steps).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from metaworld.policies import SawyerReachV3Policy

from cocoa.envs import get_family
from cocoa.envs.metaworld_families import with_reward_version
from cocoa.evaluator import EvalProtocol, evaluate
from cocoa.official import make_official_test_envs, official_benchmark, official_evaluate
from cocoa.types import Episode, Transition

GOALS = 5
HORIZON = 150
ADAPTATION = 1
EVALUATION = 3


class ScriptedReachPolicy:
    """Metaworld's scripted reach policy with the goal put back into the observation;
    ``active=False`` keeps the arm still. Checks the rollout contract as it goes: ``observe``
    gets each transition, and the next ``act`` sees its next observation."""

    def __init__(self, goal: np.ndarray, active: bool):
        self.goal, self.active = goal, active
        self.script = SawyerReachV3Policy()
        self.expected_obs: np.ndarray | None = None
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        self.expected_obs = None

    def act(self, observation: np.ndarray) -> np.ndarray:
        if self.expected_obs is not None:
            np.testing.assert_array_equal(observation, self.expected_obs)
        if not self.active:
            return np.zeros(4)
        full = np.array(observation, dtype=np.float64)
        full[-3:] = self.goal
        with warnings.catch_warnings():  # the script warns about its own gains
            warnings.simplefilter("ignore", UserWarning)
            return self.script.get_action(full)

    def observe(self, t: Transition) -> None:
        self.expected_obs = None if t.done else np.asarray(t.next_observation)


class ScriptedLearner:
    """A MetaLearner whose exploration and adapted policies are the scripted one, active on
    the goals in ``solves`` (None: all). Keeps what ``adapt`` received, by goal index."""

    env_steps = 0
    metric_names = ()

    def __init__(self, solves: set[int] | None = None):
        self.solves = solves
        self.adapted: dict[int, list[Episode]] = {}

    def exploration_policy(self, task=None, *, prior_episodes=1, run=0):
        active = self.solves is None or task.index in self.solves
        policy = ScriptedReachPolicy(np.asarray(task.features[-3:], dtype=np.float64), active)
        policy.task_index = task.index
        return policy

    def adapt(self, policy, episodes):
        self.adapted[policy.task_index] = list(episodes)
        return policy


def _ours(learner, family):
    protocol = EvalProtocol("metaworld-v3", HORIZON, ADAPTATION, EVALUATION)
    return evaluate(learner, family, family.make_tasks(0)[1][:GOALS], protocol)


def _official(learner, family):
    return official_evaluate(
        learner,
        family,
        0,
        goals_per_class=GOALS,
        horizon=HORIZON,
        adaptation_episodes=ADAPTATION,
        evaluation_episodes=EVALUATION,
    )


def test_scripted_reach_agrees_and_adapts_on_the_same_episodes():
    """Every goal solved: both say 1.0. Under v1 rewards, so the official envs must carry the
    run's reward version for the episodes to match our rollouts."""
    family = with_reward_version(get_family("reach"), "v1")
    official_learner, our_learner = ScriptedLearner(), ScriptedLearner()
    official = _official(official_learner, family)
    ours = _ours(our_learner, family)
    assert ours.success_rate == 1.0
    assert official.success_rate == 1.0
    assert official.task_success == {"reach-v3": 1.0}
    assert official.goals == GOALS
    assert set(official.goal_success.values()) == {1.0}
    # the adapter built the same exploration episodes as our rollout, goal by goal
    assert sorted(official_learner.adapted) == sorted(our_learner.adapted) == list(range(GOALS))
    for goal in range(GOALS):
        (a,) = official_learner.adapted[goal]
        (b,) = our_learner.adapted[goal]
        assert len(a) == len(b) == HORIZON
        for name in ("observations", "actions", "rewards", "next_observations", "successes"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.rewards.max() > 100  # v1 pays up to ~2,000 a step on reach; v2 at most 10


def test_official_count_inflates_a_partial_success():
    """1 goal of 5 solved: the true per-goal rate is 0.2; Metaworld's count says 1.0, all 3
    counted episodes coming from the solved goal."""
    family = get_family("reach")
    ours = _ours(ScriptedLearner({0}), family)
    official = _official(ScriptedLearner({0}), family)
    assert [t.success_rate for t in ours.tasks] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert ours.success_rate == pytest.approx(0.2)
    assert official.success_rate == 1.0 > ours.success_rate
    assert official.counted_goals == {"reach-v3": [0, 0, 0]}
    # within the official loop only the solved goal finished its evaluation episodes
    assert official.goal_success == {0: 1.0}


def test_official_envs_are_metaworlds_test_goals_with_the_runs_reward_version():
    family = with_reward_version(get_family("reach"), "v1")
    envs = make_official_test_envs(family, task_seed=0, goals_per_class=3, horizon=20)
    try:
        assert envs.num_envs == 3
        assert set(envs.get_attr("reward_function_version")) == {"v1"}
        assert all(envs.get_attr("terminate_on_success"))
        ours = family.make_tasks(0)[1][:3]
        goals = [tasks[0] for tasks in envs.get_attr("tasks")]
        assert [g.data for g in goals] == [t.param("data") for t in ours]
    finally:
        envs.close()


def test_official_applies_to_metaworld_families_only():
    assert official_benchmark(get_family("reach")) == "reach-v3"
    assert official_benchmark(get_family("ml10")) == "ML10"
    with pytest.raises(ValueError, match="Metaworld families"):
        official_benchmark(get_family("point-robot"))
