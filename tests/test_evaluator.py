"""The evaluator, driven by stub meta-learners with known behaviour (garage's approach)."""

import numpy as np
import pytest

from cocoa.envs import get_family
from cocoa.evaluator import evaluate, get_protocol
from cocoa.task_samplers import get_sampler


class GoalSeeker:
    """Moves straight to a known goal at full speed; records what it was asked."""

    def __init__(self, goal=None):
        self.goal = goal
        self.pos = np.zeros(2)
        self.resets = 0
        self.observed = 0

    def reset(self):
        self.resets += 1

    def act(self, obs):
        if self.goal is None:
            return np.zeros(2)
        delta = np.clip((self.goal - obs) / 0.1, -1, 1)
        return delta

    def observe(self, t):
        self.observed += 1


class StubLearner:
    """Explores by standing still; 'adapts' by reading the goal off the exploration rewards:
    for the point robot, reward = −|goal| at the origin, so a perfect adaptation needs the task.
    The stub cheats on purpose with an oracle dict to check the evaluator's bookkeeping."""

    env_steps = 0
    metric_names = ()

    def __init__(self, goals_by_distance):
        self.goals = goals_by_distance
        self.adapt_calls = []

    def exploration_policy(self, task=None):
        return GoalSeeker(None)

    def adapt(self, policy, episodes):
        self.adapt_calls.append((policy, len(episodes)))
        d = round(-float(episodes[0].rewards[0]), 6)
        return GoalSeeker(self.goals[d])


def test_protocols():
    mw_like = get_family("point-robot")
    p = get_protocol("thesis", mw_like)
    assert (p.horizon, p.n_explore, p.n_eval) == (20, 1, 3)
    assert get_protocol("thesis", get_family("sparse-point-robot")).n_explore == 2
    with pytest.raises(ValueError, match="Metaworld"):
        get_protocol("metaworld-v3", mw_like)
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("nope", mw_like)


def test_explore_adapt_evaluate_bookkeeping():
    family = get_family("point-robot")
    tasks = get_sampler("point-robot").test_tasks()[:4]
    goals = {
        round(float(np.linalg.norm(t.oracle.astype(np.float64))), 6): t.oracle.astype(np.float64)
        for t in tasks
    }
    learner = StubLearner(goals)
    protocol = get_protocol("thesis", family)
    result = evaluate(learner, family, tasks, protocol)
    assert len(result.tasks) == 4
    assert [len(c) and c[1] for c in learner.adapt_calls] == [protocol.n_explore] * 4
    for t, res in zip(tasks, result.tasks):
        dist = float(np.linalg.norm(t.oracle))
        # exploration stands still: return = −20·|goal|
        assert res.explore_returns == pytest.approx([-20 * dist], rel=1e-5)
        assert len(res.returns) == protocol.n_eval
        # the adapted policy walks to the goal: far better than standing still, all episodes equal
        assert res.mean_return > -20 * dist * 0.5
        assert np.std(res.returns) == pytest.approx(0.0, abs=1e-9)
    assert result.mean_return == pytest.approx(np.mean([r.mean_return for r in result.tasks]))
    assert result.metrics() == {"meta_test/return": result.mean_return}


def test_success_is_reported_on_sparse_family():
    family = get_family("sparse-point-robot")
    tasks = get_sampler("sparse-point-robot").test_tasks()[:3]
    goals = {round(float(np.linalg.norm(t.oracle.astype(np.float64))), 6): t.oracle for t in tasks}

    class Oracle(StubLearner):
        def adapt(self, policy, episodes):
            return GoalSeeker(self.task_goal)

    learner = Oracle(goals)
    results = []
    for t in tasks:
        learner.task_goal = t.oracle.astype(np.float64)
        results.append(evaluate(learner, family, [t], get_protocol("thesis", family)))
    for r in results:
        assert r.success_rate == 1.0
        assert r.mean_return > 0  # sparse reward collected near the goal
        assert r.tasks[0].explore_returns == [0.0, 0.0]  # never inside the goal radius
        assert set(r.metrics()) == {"meta_test/return", "meta_test/success"}
