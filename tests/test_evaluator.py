"""The evaluator, driven by stub meta-learners with known behaviour (garage's approach)."""

import numpy as np
import pytest

from cocoa.envs import get_family
from cocoa.evaluator import evaluate, get_protocol
from cocoa.task_samplers import get_sampler


class GoalSeeker:
    """Moves straight to a known goal at full speed; with no goal, walks an L (right, then up)
    so that its positions are not collinear. Records what it was asked."""

    def __init__(self, goal=None):
        self.goal = goal
        self.resets = 0
        self.observed = 0
        self.t = 0

    def reset(self):
        self.resets += 1
        self.t = 0

    def act(self, obs):
        self.t += 1
        if self.goal is None:
            return np.array([1.0, 0.0]) if self.t <= 5 else np.array([0.0, 1.0])
        return np.clip((self.goal - obs) / 0.1, -1, 1)

    def observe(self, t):
        self.observed += 1


def trilaterate(episodes):
    """The goal from dense point-robot rewards, r = −|s' − g|, by least squares on
    |s'|² − r² = 2 s'·g − |g|² (exact when the positions are not collinear)."""
    s = np.concatenate([e.next_observations for e in episodes]).astype(np.float64)
    r = np.concatenate([e.rewards for e in episodes]).astype(np.float64)
    A = np.column_stack([2 * s, -np.ones(len(s))])
    b = (s**2).sum(1) - r**2
    return np.linalg.lstsq(A, b, rcond=None)[0][:2]


class StubLearner:
    """Explores by walking an L from the random start; adapts by trilateration from the
    exploration rewards. Records every adapt call to check the evaluator's bookkeeping."""

    env_steps = 0
    metric_names = ()

    def __init__(self):
        self.adapt_calls = []
        self.explore_calls = []

    def exploration_policy(self, task=None, *, prior_episodes=1, run=0):
        self.explore_calls.append((prior_episodes, run))
        return GoalSeeker(None)

    def adapt(self, policy, episodes):
        self.adapt_calls.append((policy, len(episodes)))
        return GoalSeeker(trilaterate(episodes[:1]))


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
    learner = StubLearner()
    protocol = get_protocol("thesis", family)
    result = evaluate(learner, family, tasks, protocol)
    assert len(result.tasks) == 4
    assert [c[1] for c in learner.adapt_calls] == [protocol.n_explore] * 4
    assert learner.explore_calls == [(1, 0)] * 4
    for res in result.tasks:
        assert len(res.explore_returns) == protocol.n_explore
        assert len(res.returns) == protocol.n_eval
        assert res.online_returns == []
        # the adapted policy walks to the trilaterated goal: far better than exploring
        assert res.mean_return > res.explore_returns[0] * 0.8
        assert max(res.returns) > -20 * 2 * np.sqrt(2)
    assert result.mean_return == pytest.approx(np.mean([r.mean_return for r in result.tasks]))
    assert result.metrics() == {"meta_test/return": result.mean_return}
    assert result.online_curve() is None


def test_evaluation_is_reproducible_and_starts_are_random():
    family = get_family("point-robot")
    tasks = get_sampler("point-robot").test_tasks()[:3]
    protocol = get_protocol("thesis", family)
    a = evaluate(StubLearner(), family, tasks, protocol, seed=3)
    b = evaluate(StubLearner(), family, tasks, protocol, seed=3)
    c = evaluate(StubLearner(), family, tasks, protocol, seed=4)
    assert a.records() == b.records()
    assert a.records() != c.records()
    # three evaluation episodes from three random starts
    assert len({round(x, 6) for x in a.tasks[0].returns}) == 3


def test_pearl_protocol_is_online_and_reports_the_last_trajectory():
    family = get_family("point-robot")
    protocol = get_protocol("pearl", family)
    assert (protocol.n_explore, protocol.n_eval, protocol.n_runs, protocol.online) == (
        1,
        2,
        2,
        True,
    )
    sparse = get_protocol("pearl", get_family("sparse-point-robot"))
    assert (sparse.n_explore, sparse.n_explore + sparse.n_eval) == (5, 20)
    cheetah = get_protocol("pearl", get_family("cheetah-vel"))
    assert (cheetah.n_explore, cheetah.n_explore + cheetah.n_eval, cheetah.horizon) == (2, 3, 200)
    with pytest.raises(ValueError, match="PEARL's own families"):
        get_protocol("pearl", get_family("reach"))

    tasks = get_sampler("point-robot").test_tasks()[:3]
    learner = StubLearner()
    result = evaluate(learner, family, tasks, protocol)
    # per task, two runs; each adapts before each of its two posterior trajectories, on all
    # trajectories so far (1, then 2)
    assert [c[1] for c in learner.adapt_calls] == [1, 2] * 2 * 3
    assert learner.explore_calls == [(1, 0), (1, 1)] * 3
    for res in result.tasks:
        assert len(res.online_returns) == 2 and all(len(r) == 3 for r in res.online_returns)
        assert res.returns == [run[-1] for run in res.online_returns]  # PEARL's figure
        assert res.explore_returns == []
        assert res.online_returns[0] != res.online_returns[1]  # independent runs
        assert res.mean_return > np.mean([run[0] for run in res.online_returns])
    curve = result.online_curve()
    assert curve == pytest.approx(
        np.mean([run for r in result.tasks for run in r.online_returns], axis=0)
    )
    assert result.mean_return == pytest.approx(curve[-1])


def test_success_is_reported_on_sparse_family():
    family = get_family("sparse-point-robot")
    # goals left of the origin: the explorer's L (right, then up) never comes within 0.2
    tasks = [t for t in get_sampler("sparse-point-robot").test_tasks() if t.oracle[0] < -0.3][:3]
    assert len(tasks) == 3

    class Oracle(StubLearner):
        def adapt(self, policy, episodes):
            return GoalSeeker(self.task_goal)

    learner = Oracle()
    results = []
    for t in tasks:
        learner.task_goal = t.oracle.astype(np.float64)
        results.append(evaluate(learner, family, [t], get_protocol("thesis", family)))
    for r in results:
        assert r.success_rate == 1.0
        assert r.mean_return > 0  # sparse reward collected near the goal
        assert r.tasks[0].explore_returns == [0.0, 0.0]  # no sparse reward outside the radius
        assert set(r.metrics()) == {"meta_test/return", "meta_test/success"}
