"""Scripted agents on PEARL's point robots: floors, ceilings and information bounds.

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

On the sparse point robot (``SPARSE_SCRIPTED``: ``still``, ``posterior-sampling``,
``optimal``) a reward comes only within the goal radius, so what exploration finds decides:

* ``posterior-sampling``: ideal posterior sampling, PEARL's exploration with a perfect
  posterior. Its belief is exact: it knows the family's goals (all of them, train and test)
  and keeps those that agree with every reward seen so far (inside the radius the reward
  also gives the distance). Before each exploration episode it draws a goal from that belief
  and walks to it; adapted, it draws one more, once, as the thesis protocol samples z once.
  It bounds what PEARL's kind of exploration can reach in the family's exploration
  episodes, however well its encoder infers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cocoa.envs import Task, TaskFamily

from .evaluator import EvalProtocol, EvalResult, evaluate
from .types import Episode, Transition

SCRIPTED = ("still", "centre", "line", "optimal")
SPARSE_SCRIPTED = ("still", "posterior-sampling", "optimal")


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


def sparse_rewards(goals: np.ndarray, positions: np.ndarray, radius: float) -> np.ndarray:
    """The sparse point robot's context reward at ``positions`` ``(n, 2)`` for each of
    ``goals`` ``(k, 2)``: 1 − distance within ``radius``, else 0; ``(k, n)``."""
    distance = np.linalg.norm(positions[None] - goals[:, None], axis=-1)
    return np.where(distance <= radius, 1.0 - distance, 0.0)


@dataclass
class _PosteriorWalk:
    """Ideal posterior sampling on the sparse point robot: ``belief`` holds the goals every
    reward so far allows; each episode walks to one of them, drawn uniformly at its start."""

    belief: np.ndarray  # (k, 2)
    radius: float
    rng: np.random.Generator
    walk: _Walk | None = None

    def reset(self) -> None:
        self.walk = _Walk(self.belief[self.rng.integers(len(self.belief))])

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self.walk.act(observation)

    def observe(self, transition: Transition) -> None:
        predicted = sparse_rewards(self.belief, transition.next_observation[None], self.radius)
        self.belief = self.belief[np.abs(predicted[:, 0] - transition.reward) < 1e-4]


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
    """One of ``SCRIPTED`` or ``SPARSE_SCRIPTED`` as a ``MetaLearner`` (nothing to train);
    ``posterior-sampling`` needs its sparse ``family``."""

    env_steps = 0
    metric_names: tuple[str, ...] = ()

    def __init__(self, name: str, seed: int = 0, family: TaskFamily | None = None):
        known = dict.fromkeys(SCRIPTED + SPARSE_SCRIPTED)
        if name not in known:
            raise ValueError(f"unknown scripted agent {name!r}; choose from {', '.join(known)}")
        if name == "posterior-sampling" and not getattr(family, "goal_radius", None):
            raise ValueError("posterior-sampling needs a sparse point-robot family")
        self.name, self.seed, self.family = name, seed, family
        if name == "posterior-sampling":  # the prior: every goal of the family, once
            train, test = family.make_tasks(0)  # the goal set does not depend on the seed
            self.goals = np.array([t.param("goal") for t in train + test], dtype=np.float64)

    def exploration_policy(
        self, task: Task | None = None, *, prior_episodes: int = 1, run: int = 0
    ) -> _Walk | _PosteriorWalk:
        rng = np.random.default_rng([self.seed, task.index if task else 0, run])
        if self.name == "posterior-sampling":
            return _PosteriorWalk(self.goals, self.family.goal_radius, rng)
        if self.name == "still":
            return _Walk(None)
        if self.name == "centre":
            return _Walk(np.zeros(2))
        if self.name == "optimal":
            return _Walk(np.asarray(task.param("goal"), dtype=np.float64))
        return _Walk(rng.uniform(-1.0, 1.0, 2))  # like a prior z

    def adapt(self, policy: _Walk | _PosteriorWalk, episodes: list[Episode]) -> _Walk:
        if self.name == "line":
            return _Walk(goal_estimate(episodes))
        if isinstance(policy, _PosteriorWalk):  # its belief already holds every reward seen
            return _Walk(policy.belief[policy.rng.integers(len(policy.belief))])
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
    """Every scripted agent of ``family`` (``SCRIPTED`` on the dense point robot,
    ``SPARSE_SCRIPTED`` on the sparse one) evaluated on ``tasks`` under ``protocol``."""
    names = {"point-robot": SCRIPTED, "sparse-point-robot": SPARSE_SCRIPTED}.get(family.name)
    if names is None:
        raise ValueError(
            f"scripted agents are defined for point-robot and sparse-point-robot, not "
            f"{family.name!r}"
        )
    return {
        name: evaluate(ScriptedLearner(name, seed, family), family, tasks, protocol, seed=seed)
        for name in names
    }


def still_to_optimal(value: float, still: float, optimal: float) -> float:
    """``value`` on the scale 0 = standing still, 1 = walking straight to the goal."""
    return (value - still) / (optimal - still)
