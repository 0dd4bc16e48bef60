"""Scripted point-robot agents: the goal from rewards, and the floors and ceilings they set."""

import numpy as np
import pytest

from cocoa.envs import get_family
from cocoa.evaluator import get_protocol
from cocoa.scripted import ScriptedLearner, goal_estimate, scripted_results, still_to_optimal
from cocoa.task_samplers import TaskSampler
from cocoa.types import Episode


def episode(positions, goal):
    s = np.asarray(positions, dtype=np.float32)
    r = -np.linalg.norm(s - goal, axis=1).astype(np.float32)
    z = np.zeros(len(s), dtype=np.float32)
    return Episode(s, np.zeros_like(s), r, r, s, z, z)


def test_goal_estimate_trilaterates_and_splits_a_mirror_pair():
    goal = np.array([0.3, -0.4])
    bent = episode([[0, 0], [0.1, 0.1], [0.2, 0.1], [0.3, 0.1]], goal)
    np.testing.assert_allclose(goal_estimate([bent]), goal, atol=1e-5)
    # on the line y = 0.5 the goal and its mirror (0.3, 1.4) are alike: the midpoint
    straight = episode([[x, 0.5] for x in np.linspace(-0.5, 0.5, 11)], goal)
    np.testing.assert_allclose(goal_estimate([straight]), [0.3, 0.5], atol=1e-5)
    # a second line settles it
    other = episode([[-0.2, y] for y in np.linspace(-0.5, 0.5, 11)], goal)
    np.testing.assert_allclose(goal_estimate([straight, other]), goal, atol=1e-4)


def test_scripted_agents_order_and_scale():
    family = get_family("point-robot")
    tasks = TaskSampler(family, 0).test_tasks()[:8]
    for protocol in ("thesis", "pearl"):
        res = {
            k: v.mean_return
            for k, v in scripted_results(family, tasks, get_protocol(protocol, family)).items()
        }
        assert res["still"] < res["centre"] < res["line"] <= res["optimal"] + 1e-6
        assert still_to_optimal(res["optimal"], res["still"], res["optimal"]) == 1.0
        assert still_to_optimal(res["line"], res["still"], res["optimal"]) > 0.8
    with pytest.raises(ValueError, match="scripted agent"):
        ScriptedLearner("nope")
    with pytest.raises(ValueError, match="point-robot"):
        scripted_results(get_family("sparse-point-robot"), tasks, get_protocol("thesis", family))
