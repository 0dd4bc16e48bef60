"""Scripted agents on PEARL's dense point robot: floors, ceilings and an information bound.

They follow the ``MetaLearner`` contract, so the one evaluator scores them on the same test
tasks, starts and protocol as a trained agent:

* ``still``: never moves (what an untrained tanh policy, whose actions start near 0, does).
* ``centre``: walks to the origin and stays, whatever the task: the best an agent that
  cannot adapt can do against uniform goals.
* ``line``: explores as PEARL's prior sample does, straight at full speed from its start to a
  random point, and then knows exactly what the rewards say. Every reward is the distance of
  the new position to the goal, so a path that is not a straight line fixes the goal (least
  squares on |s'|² − r² = 2 s'·g − |g|²); a straight path leaves the goal's mirror image
  across it just as likely, and the agent goes to the midpoint of the two. This bounds what
  any agent whose exploration walks one straight line can reach.
* ``optimal``: knows the goal and walks straight to it.

``stand-still-to-optimal`` scores put a return on the scale 0 = ``still``, 1 = ``optimal``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cocoa.envs import Task, TaskFamily

from .evaluator import EvalProtocol, EvalResult, evaluate
from .types import Episode, Transition

SCRIPTED = ("still", "centre", "line", "optimal")


@dataclass
class _Walk:
    """Walks straight at full speed to ``target`` (stays put when None)."""

    target: np.ndarray | None

    def reset(self) -> None:
        pass

    def act(self, observation: np.ndarray) -> np.ndarray:
        if self.target is None:
            return np.zeros(2)
        return np.clip((self.target - observation) / 0.1, -1.0, 1.0)

    def observe(self, transition: Transition) -> None:
        pass


def goal_estimate(episodes: list[Episode]) -> np.ndarray:
    """The goal as the dense rewards of ``episodes`` give it: exact when the positions are
    not collinear, else the midpoint of the goal and its mirror image across their line."""
    s = np.concatenate([e.next_observations for e in episodes]).astype(np.float64)
    r = np.concatenate([e.rewards for e in episodes]).astype(np.float64)
    centred = s - s.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    if len(s) >= 3 and sv[-1] > 1e-6 * max(sv[0], 1e-12):
        A = np.column_stack([2 * s, -np.ones(len(s))])
        return np.linalg.lstsq(A, (s**2).sum(1) - r**2, rcond=None)[0][:2]
    # collinear: along the line t, r² − t² = −2 t t_g + (t_g² + h²), linear in t_g
    d = vt[0]
    origin = s.mean(0)
    t = centred @ d
    A = np.column_stack([-2 * t, np.ones(len(t))])
    t_g = np.linalg.lstsq(A, r**2 - t**2, rcond=None)[0][0]
    return origin + t_g * d


class ScriptedLearner:
    """One of ``SCRIPTED`` as a ``MetaLearner`` (nothing to train)."""

    env_steps = 0
    metric_names: tuple[str, ...] = ()

    def __init__(self, name: str, seed: int = 0):
        if name not in SCRIPTED:
            raise ValueError(f"unknown scripted agent {name!r}; choose from {', '.join(SCRIPTED)}")
        self.name, self.seed = name, seed

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> _Walk:
        if self.name == "still":
            return _Walk(None)
        if self.name == "centre":
            return _Walk(np.zeros(2))
        if self.name == "optimal":
            return _Walk(np.asarray(task.param("goal"), dtype=np.float64))
        key = [self.seed, task.index if task else 0, run]
        return _Walk(np.random.default_rng(key).uniform(-1.0, 1.0, 2))  # like a prior z

    def adapt(self, policy: _Walk, episodes: list[Episode]) -> _Walk:
        if self.name == "line":
            return _Walk(goal_estimate(episodes))
        return policy

    def train_iteration(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def scripted_results(
    family: TaskFamily, tasks: list[Task], protocol: EvalProtocol, seed: int = 0
) -> dict[str, EvalResult]:
    """Every scripted agent evaluated on ``tasks`` under ``protocol`` (dense point robot)."""
    if family.name != "point-robot":
        raise ValueError(f"scripted agents are defined for point-robot, not {family.name!r}")
    return {
        name: evaluate(ScriptedLearner(name, seed), family, tasks, protocol, seed=seed)
        for name in SCRIPTED
    }


def still_to_optimal(value: float, still: float, optimal: float) -> float:
    """``value`` on the scale 0 = standing still, 1 = walking straight to the goal."""
    return (value - still) / (optimal - still)
