"""MuJoCo locomotion task families with PEARL's task definitions, on gymnasium's v5 envs.

==================== ====================== ========= ======= =========== ===============
family               env (gymnasium v5)     obs, act  oracle  train/test  terminates
==================== ====================== ========= ======= =========== ===============
cheetah-vel          HalfCheetah            17, 6     1       100/30      never
cheetah-dir          HalfCheetah            17, 6     1       2/2         never
ant-dir              Ant                    27, 8     1       2/2         never
ant-goal             Ant (with torso x, y)  29, 8     2       150/30      never
humanoid-dir         Humanoid               348, 17   2       100/30      torso z outside (1, 2)
walker-rand-params   Walker2d               17, 6     65      40/10       gymnasium's unhealthy
hopper-rand-params   Hopper                 11, 3     41      40/10       gymnasium's unhealthy
==================== ====================== ========= ======= =========== ===============

Rewards follow PEARL (oyster ``rlkit/envs``); every env reports its reward terms in ``info``.

Choices worth knowing:

* Observations are gymnasium v5's. PEARL's cheetah appended the torso position, which we do
  not. Ant observations leave out the contact forces (``include_cfrc_ext_in_observation=False``,
  as PEARL's ant-dir); ant-goal keeps the torso x, y (``exclude_current_positions...=False``),
  as PEARL's ant-goal did, since the goal is a position. Humanoid keeps gymnasium's full
  observation (including ``cinert``, ``cvel``, actuator and contact forces, as PEARL's did).
* Termination: the cheetah never terminates; the ant is built with
  ``terminate_when_unhealthy=False`` (PEARL's ant-goal never terminates; its ant-dir did report
  a done flag for a torso height outside [0.2, 1], which we drop so both ant families match).
  Humanoid, walker and hopper terminate when unhealthy, as in PEARL and gymnasium.
* cheetah-dir and ant-dir have the same two MDPs in train and test (as in PEARL). Their test
  tasks carry ``task_split="test"`` in their parameters so the two splits are distinct values.
* Rand-params: ``body_mass``, ``body_inertia`` and ``geom_friction`` are scaled element-wise by
  ``1.5**u`` and ``dof_damping`` by ``1.3**u``, ``u ~ U[-3, 3]`` (rand_param_envs). Scales
  always apply to the model's original values, saved at construction. The oracle features are
  the exponents ``u`` of body_mass, body_inertia, dof_damping, geom_friction, flattened and
  concatenated in that order (world body and floor geom included, as in rand_param_envs).
  Walker2d-v5 uses frame_skip 4 (rand_param_envs used 5).

Task sampling uses ``np.random.default_rng(seed)`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv, mass_center
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from .base import Task, TaskFamily, make_task

# --------------------------------------------------------------------------- environments


class HalfCheetahVelEnv(HalfCheetahEnv):
    """HalfCheetah-v5 rewarded for running at ``goal_velocity``.

    reward = -|forward_velocity - goal_velocity| - 0.05 * sum(action**2)
    """

    def __init__(self, **kwargs: Any):
        super().__init__(ctrl_cost_weight=0.05, **kwargs)
        self.goal_velocity = 0.0

    def _get_rew(self, x_velocity: float, action):
        forward_reward = -abs(x_velocity - self.goal_velocity)
        ctrl_cost = self.control_cost(action)
        return forward_reward - ctrl_cost, {
            "reward_forward": forward_reward,
            "reward_ctrl": -ctrl_cost,
        }


class HalfCheetahDirEnv(HalfCheetahEnv):
    """HalfCheetah-v5 rewarded for running in ``direction`` (+1 forward, -1 backward).

    reward = direction * forward_velocity - 0.05 * sum(action**2)
    """

    def __init__(self, **kwargs: Any):
        super().__init__(ctrl_cost_weight=0.05, **kwargs)
        self.direction = 1.0

    def _get_rew(self, x_velocity: float, action):
        forward_reward = self.direction * x_velocity
        ctrl_cost = self.control_cost(action)
        return forward_reward - ctrl_cost, {
            "reward_forward": forward_reward,
            "reward_ctrl": -ctrl_cost,
        }


class _AntTaskEnv(AntEnv):
    """Ant-v5 without contact forces in the observation and without termination.

    Subclasses define ``_task_reward(xy_before, xy_after)``; the step adds PEARL's costs:
    ``ctrl_cost_weight * sum(action**2)`` and ``5e-4 * sum(clip(cfrc_ext, -1, 1)**2)``.
    """

    survive_reward = 0.0

    def __init__(self, ctrl_cost_weight: float, **kwargs: Any):
        kwargs.setdefault("include_cfrc_ext_in_observation", False)
        super().__init__(
            ctrl_cost_weight=ctrl_cost_weight,
            contact_cost_weight=5e-4,
            terminate_when_unhealthy=False,
            **kwargs,
        )

    def _task_reward(self, xy_before: np.ndarray, xy_after: np.ndarray) -> tuple[float, dict]:
        raise NotImplementedError

    def step(self, action):
        xy_before = self.data.body(self._main_body).xpos[:2].copy()
        self.do_simulation(action, self.frame_skip)
        xy_after = self.data.body(self._main_body).xpos[:2].copy()

        task_reward, info = self._task_reward(xy_before, xy_after)
        ctrl_cost = self.control_cost(action)
        contact_cost = self.contact_cost
        reward = task_reward - ctrl_cost - contact_cost + self.survive_reward
        info.update(
            x_position=xy_after[0],
            y_position=xy_after[1],
            reward_ctrl=-ctrl_cost,
            reward_contact=-contact_cost,
            reward_survive=self.survive_reward,
        )
        return self._get_obs(), reward, False, False, info


class AntDirEnv(_AntTaskEnv):
    """Ant-v5 rewarded for running along ``direction`` (+1: +x, -1: -x); PEARL's ant-dir.

    reward = velocity . (direction, 0) - 0.5 * sum(action**2) - contact cost + 1
    """

    survive_reward = 1.0

    def __init__(self, **kwargs: Any):
        super().__init__(ctrl_cost_weight=0.5, **kwargs)
        self.direction = 1.0

    def _task_reward(self, xy_before, xy_after):
        velocity = (xy_after - xy_before) / self.dt
        forward_reward = float(velocity[0] * self.direction)
        return forward_reward, {
            "reward_forward": forward_reward,
            "x_velocity": velocity[0],
            "y_velocity": velocity[1],
        }


class AntGoalEnv(_AntTaskEnv):
    """Ant-v5 rewarded for reaching ``goal`` (x, y); PEARL's ant-goal.

    reward = -|torso_xy - goal|_1 - 0.1 * sum(action**2) - contact cost (no survive bonus).
    The observation includes the torso's x, y position.
    """

    survive_reward = 0.0

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("exclude_current_positions_from_observation", False)
        super().__init__(ctrl_cost_weight=0.1, **kwargs)
        self.goal = np.zeros(2)

    def _task_reward(self, xy_before, xy_after):
        goal_reward = -float(np.abs(xy_after - self.goal).sum())
        return goal_reward, {
            "reward_goal": goal_reward,
            "distance_to_goal": float(np.linalg.norm(xy_after - self.goal)),
        }


class HumanoidDirEnv(HumanoidEnv):
    """Humanoid-v5 rewarded for moving its centre of mass along ``direction`` (unit x, y).

    reward = 0.25 * (com displacement . direction) / timestep - 0.1 * sum(ctrl**2)
             - min(5e-7 * sum(cfrc_ext**2), 10) + 5
    (PEARL's humanoid-dir; displacement / timestep is 5x the velocity: frame_skip is 5.)
    Terminates when the torso height leaves (1, 2).
    """

    alive_bonus = 5.0

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.direction = np.array([1.0, 0.0])

    def step(self, action):
        com_before = mass_center(self.model, self.data)
        self.do_simulation(action, self.frame_skip)
        com_after = mass_center(self.model, self.data)

        displacement = float((com_after - com_before) @ self.direction)
        lin_vel_reward = 0.25 * displacement / self.model.opt.timestep
        ctrl_cost = self.control_cost(action)  # 0.1 * sum(data.ctrl**2)
        impact_cost = float(self.contact_cost)  # 5e-7 * sum(cfrc_ext**2), capped at 10
        reward = lin_vel_reward - ctrl_cost - impact_cost + self.alive_bonus
        terminated = self._terminate_when_unhealthy and not self.is_healthy
        info = {
            "reward_linvel": lin_vel_reward,
            "reward_quadctrl": -ctrl_cost,
            "reward_impact": -impact_cost,
            "reward_alive": self.alive_bonus,
            "x_position": self.data.qpos[0],
            "y_position": self.data.qpos[1],
        }
        return self._get_obs(), reward, terminated, False, info


class RandParamsMixin:
    """Scales a MuJoCo model's physical parameters relative to its original values.

    ``set_log_scales({"body_mass": u, ...})`` sets ``model.<name> = original * base**u``
    element-wise; the originals are copied when the env is built, so setting a task never
    compounds with or leaks from the previous one.
    """

    #: parameter -> base of its scale (rand_param_envs: 1.5 for all but damping's 1.3)
    RAND_PARAMS: dict[str, float] = {
        "body_mass": 1.5,
        "body_inertia": 1.5,
        "dof_damping": 1.3,
        "geom_friction": 1.5,
    }
    LOG_SCALE_LIMIT = 3.0

    model: Any

    def _save_init_params(self) -> None:
        self.init_params = {name: getattr(self.model, name).copy() for name in self.RAND_PARAMS}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the randomised parameters."""
        return {name: value.shape for name, value in self.init_params.items()}

    def set_log_scales(self, log_scales: Mapping[str, Any]) -> None:
        """Sets every randomised parameter to ``original * base**log_scale``."""
        for name, base in self.RAND_PARAMS.items():
            original = self.init_params[name]
            exponents = np.reshape(np.asarray(log_scales[name], dtype=np.float64), original.shape)
            # In-place: MuJoCo reads the model's own arrays.
            getattr(self.model, name)[...] = original * np.power(base, exponents)


class HopperRandParamsEnv(RandParamsMixin, HopperEnv):
    """Hopper-v5 with randomisable mass, inertia, damping and friction; standard reward."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._save_init_params()


class Walker2dRandParamsEnv(RandParamsMixin, Walker2dEnv):
    """Walker2d-v5 with randomisable mass, inertia, damping and friction; standard reward."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._save_init_params()


# --------------------------------------------------------------------------- families


class LocomotionFamily(TaskFamily):
    """Shared settings of the locomotion families and seeded i.i.d. task sampling.

    Subclasses set ``env_class``, implement ``_sample(rng, n) -> [(features, params), ...]``
    and ``apply_task``; ``make_tasks`` draws ``n_train + n_test`` tasks from
    ``np.random.default_rng(seed)``, the first ``n_train`` for training.
    """

    kind = "locomotion"
    horizon = 200
    has_success = False
    explore_episodes = 2
    pearl_eval = (2, 3)  # oyster: num_exp_traj_eval 2, num_steps_per_eval 600
    env_class: type[gym.Env]

    @property
    def full_id(self) -> str:  # type: ignore[override]
        return self.name

    def _make_raw_env(self) -> gym.Env:
        return self.env_class()

    def _sample(self, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, dict[str, Any]]]:
        raise NotImplementedError

    def make_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        rng = np.random.default_rng(seed)
        samples = self._sample(rng, self.n_train + self.n_test)
        tasks = []
        for i, (features, params) in enumerate(samples):
            split, index = ("train", i) if i < self.n_train else ("test", i - self.n_train)
            tasks.append(make_task(self.name, split, index, features, **params))
        return tasks[: self.n_train], tasks[self.n_train :]


class _TwoDirectionFamily(LocomotionFamily):
    """Forward/backward tasks: the same two MDPs in train and test (PEARL's protocol).

    Deterministic (the seed is ignored). Tasks carry ``task_split`` ("train"/"test") in their
    parameters so the splits are distinct values; oracle features: ``[direction]``.
    """

    n_train = 2
    n_test = 2
    oracle_dim = 1
    directions: tuple[float, float]

    def make_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        splits = {
            split: [
                make_task(self.name, split, i, [d], direction=d, task_split=split)
                for i, d in enumerate(self.directions)
            ]
            for split in ("train", "test")
        }
        return splits["train"], splits["test"]

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.unwrapped.direction = float(task.param("direction"))


class CheetahVelFamily(LocomotionFamily):
    """Half-cheetah with target velocity ``U[0, 3)``; oracle ``[goal_velocity]``."""

    name = "cheetah-vel"
    env_class = HalfCheetahVelEnv
    n_train = 100
    n_test = 30
    oracle_dim = 1

    def _sample(self, rng, n):
        return [([v], {"goal_velocity": v}) for v in rng.uniform(0.0, 3.0, size=n)]

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.unwrapped.goal_velocity = float(task.param("goal_velocity"))


class CheetahDirFamily(_TwoDirectionFamily):
    """Half-cheetah running backward (-1) or forward (+1), PEARL's order."""

    name = "cheetah-dir"
    env_class = HalfCheetahDirEnv
    directions = (-1.0, 1.0)


class AntDirFamily(_TwoDirectionFamily):
    """Ant running forward (+1, angle 0) or backward (-1, angle pi), PEARL's order."""

    name = "ant-dir"
    env_class = AntDirEnv
    directions = (1.0, -1.0)


class AntGoalFamily(LocomotionFamily):
    """Ant reaching a goal at radius ``3 * sqrt(U)`` and angle ``U[0, 2pi)``; oracle goal x, y."""

    name = "ant-goal"
    env_class = AntGoalEnv
    n_train = 150
    n_test = 30
    oracle_dim = 2

    def _sample(self, rng, n):
        angles = rng.uniform(0.0, 2.0 * np.pi, size=n)
        radii = 3.0 * np.sqrt(rng.uniform(0.0, 1.0, size=n))
        goals = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        return [(goal, {"goal": goal}) for goal in goals]

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.unwrapped.goal = np.asarray(task.param("goal"), dtype=np.float64)


class HumanoidDirFamily(LocomotionFamily):
    """Humanoid moving along the angle ``U[0, 2pi)``; oracle ``[cos, sin]``."""

    name = "humanoid-dir"
    env_class = HumanoidDirEnv
    n_train = 100
    n_test = 30
    oracle_dim = 2

    def _sample(self, rng, n):
        angles = rng.uniform(0.0, 2.0 * np.pi, size=n)
        return [([np.cos(a), np.sin(a)], {"angle": a}) for a in angles]

    def apply_task(self, env: gym.Env, task: Task) -> None:
        angle = float(task.param("angle"))
        env.unwrapped.direction = np.array([np.cos(angle), np.sin(angle)])


class _RandParamsFamily(LocomotionFamily):
    """Randomised physics (rand_param_envs); oracle features: the log-scale exponents."""

    n_train = 40
    n_test = 10
    env_class: type[RandParamsMixin]

    @cached_property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the randomised model arrays (read off a freshly built env)."""
        env = self.env_class()
        shapes = env.param_shapes()
        env.close()
        return shapes

    @property
    def oracle_dim(self) -> int:  # type: ignore[override]
        return int(sum(np.prod(shape) for shape in self.param_shapes.values()))

    def _sample(self, rng, n):
        limit = RandParamsMixin.LOG_SCALE_LIMIT
        samples = []
        for _ in range(n):
            params = {
                name: rng.uniform(-limit, limit, size=shape)
                for name, shape in self.param_shapes.items()
            }
            features = np.concatenate([params[name].ravel() for name in self.param_shapes])
            samples.append((features, params))
        return samples

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.unwrapped.set_log_scales({name: task.param(name) for name in self.param_shapes})


class WalkerRandParamsFamily(_RandParamsFamily):
    """Walker2d with randomised mass, inertia, damping and friction."""

    name = "walker-rand-params"
    env_class = Walker2dRandParamsEnv


class HopperRandParamsFamily(_RandParamsFamily):
    """Hopper with randomised mass, inertia, damping and friction."""

    name = "hopper-rand-params"
    env_class = HopperRandParamsEnv


#: short name -> family class, in the order they are registered
LOCOMOTION_FAMILIES: dict[str, type[LocomotionFamily]] = {
    family.name: family
    for family in (
        CheetahVelFamily,
        CheetahDirFamily,
        AntDirFamily,
        AntGoalFamily,
        HumanoidDirFamily,
        WalkerRandParamsFamily,
        HopperRandParamsFamily,
    )
}
