"""2-D point robots (PEARL's navigation test bed): ``point-robot`` and ``sparse-point-robot``.

The robot starts at the origin; an action moves it by at most 0.1 per axis. The dense reward
is the negative distance to the goal. ``sparse-point-robot`` puts goals on the upper half of
the unit circle and reports ``info["sparse_reward"] = 1 - distance`` inside radius 0.2 of the
goal and 0 elsewhere: the dense reward is kept for RL, the sparse one is used for context and
evaluation.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .base import Task, TaskFamily, make_task


class PointEnv(gym.Env):
    """A point mass on the plane moving towards a goal; no termination."""

    metadata = {"render_modes": []}

    def __init__(self, goal_radius: float | None = None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.action_space = gym.spaces.Box(-0.1, 0.1, shape=(2,), dtype=np.float64)
        self.goal = np.zeros(2)
        self.goal_radius = goal_radius
        self._state = np.zeros(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._state = np.zeros(2)
        return self._state.copy(), {}

    def step(self, action):
        action = np.clip(action, self.action_space.low, self.action_space.high)
        self._state = self._state + action
        distance = float(np.linalg.norm(self._state - self.goal))
        reward = -distance
        info = {"distance": distance}
        if self.goal_radius is not None:
            inside = distance <= self.goal_radius
            info["sparse_reward"] = (1.0 - distance) if inside else 0.0
            info["success"] = float(inside)
        return self._state.copy(), reward, False, False, info


class PointRobotFamily(TaskFamily):
    """Goals uniform on ``[-1, 1]^2``; horizon 20; PEARL's 80 train / 20 test tasks."""

    name = "point-robot"
    full_id = "point-robot"
    kind = "point"
    horizon = 20
    n_train = 80
    n_test = 20
    oracle_dim = 2
    explore_episodes = 1

    def _make_raw_env(self) -> gym.Env:
        return PointEnv()

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.unwrapped.goal = np.asarray(task.param("goal"), dtype=np.float64)

    def _goals(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=(n, 2))

    def make_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        goals = self._goals(np.random.default_rng(seed), self.n_train + self.n_test)
        tasks = [
            make_task(
                self.name,
                "train" if i < self.n_train else "test",
                i if i < self.n_train else i - self.n_train,
                goal,
                goal=goal,
            )
            for i, goal in enumerate(goals)
        ]
        return tasks[: self.n_train], tasks[self.n_train :]


class SparsePointRobotFamily(PointRobotFamily):
    """Goals on the upper unit half-circle; sparse reward within radius 0.2; success inside it."""

    name = "sparse-point-robot"
    full_id = "sparse-point-robot"
    has_success = True
    has_sparse_reward = True
    goal_radius = 0.2
    explore_episodes = 2

    def _make_raw_env(self) -> gym.Env:
        return PointEnv(goal_radius=self.goal_radius)

    def _goals(self, rng: np.random.Generator, n: int) -> np.ndarray:
        angles = rng.uniform(0.0, np.pi, size=n)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
