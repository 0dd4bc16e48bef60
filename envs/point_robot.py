"""2-D point robots (PEARL's navigation test bed): ``point-robot`` and ``sparse-point-robot``.

As in PEARL's own env (oyster ``rlkit/envs/point_robot.py``):

* ``point-robot``: goals uniform on ``[-1, 1]²``; each episode starts at a uniform random
  point of ``[-1, 1]²``, drawn from the env's own seeded generator (``reset(seed=...)``, never
  a global one). The reward is the negative distance of the new position to the goal.
* ``sparse-point-robot``: each episode starts at the origin; the 100 goals are evenly spaced
  angles on the upper unit half-circle, shuffled by the task seed and split 80 / 20. It reports
  ``info["sparse_reward"] = 1 - distance`` inside radius 0.2 of the goal and 0 elsewhere: the
  dense reward is kept for RL, the sparse one is used for context and evaluation.

An action moves the robot by at most 0.1 per axis (actions arrive in ``[-1, 1]`` and
``TaskEnv`` rescales them, as rlkit's ``NormalizedBoxEnv`` does).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .base import Task, TaskFamily, make_task


class PointEnv(gym.Env):
    """A point mass on the plane moving towards a goal; no termination."""

    metadata = {"render_modes": []}

    def __init__(self, goal_radius: float | None = None, random_start: bool = True):
        self.random_start = random_start
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.action_space = gym.spaces.Box(-0.1, 0.1, shape=(2,), dtype=np.float64)
        self.goal = np.zeros(2)
        self.goal_radius = goal_radius
        self._state = np.zeros(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)  # seeds self.np_random, the env's own generator
        if self.random_start:
            self._state = self.np_random.uniform(-1.0, 1.0, size=2)
        else:
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
    """Goals and starts uniform on ``[-1, 1]^2``; horizon 20; PEARL's 80 train / 20 test tasks."""

    name = "point-robot"
    full_id = "point-robot"
    kind = "point"
    horizon = 20
    n_train = 80
    n_test = 20
    oracle_dim = 2
    explore_episodes = 1
    pearl_eval = (1, 3)  # oyster: num_exp_traj_eval 1, num_steps_per_eval 60

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
    pearl_eval = (5, 20)  # oyster: num_exp_traj_eval 5, num_steps_per_eval 400

    def _make_raw_env(self) -> gym.Env:
        return PointEnv(goal_radius=self.goal_radius, random_start=False)

    def _goals(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # PEARL's: evenly spaced angles on [0, π], shuffled, the first 80 for training
        angles = np.linspace(0.0, np.pi, num=n)
        goals = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return goals[rng.permutation(n)]
