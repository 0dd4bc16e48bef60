"""The task-family contract: ``Task`` values, the ``TaskFamily`` ABC, ``TaskEnv`` and the registry.

A *task family* is a distribution over MDPs that share observation and action spaces
(goal positions of Metaworld's reach, target velocities of the half-cheetah, ...). A *task*
is one member: a frozen, hashable, picklable value. Families build environments for tasks
and split their task distribution into fixed train and test tasks from a seed.

Nothing here touches a global random number generator: everything random takes a seed or a
``numpy.random.Generator``.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Task:
    """One MDP of a family.

    Attributes:
        family: the family's short name (``reach``, ``cheetah-vel``, ...).
        split: ``"train"`` or ``"test"``.
        index: position inside its split.
        params: hashable parameters the family needs to build the MDP
            (name -> float, tuple of floats, str or bytes).
        features: the oracle feature vector (goal, velocity, direction, parameters).
    """

    family: str
    split: str
    index: int
    params: tuple[tuple[str, Any], ...]
    features: tuple[float, ...] = field(repr=False)

    @property
    def oracle(self) -> np.ndarray:
        """The oracle feature vector as float32, shape ``(oracle_dim,)``."""
        return np.asarray(self.features, dtype=np.float32)

    def param(self, name: str) -> Any:
        """The value of one parameter."""
        for key, value in self.params:
            if key == name:
                return value
        raise KeyError(f"task {self.family}/{self.split}/{self.index} has no parameter {name!r}")

    def __str__(self) -> str:
        return f"{self.family}:{self.split}:{self.index}"


def make_task(
    family: str, split: str, index: int, features: Sequence[float], **params: Any
) -> Task:
    """Builds a ``Task`` with parameters sorted by name and numpy values made hashable."""
    hashable = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, np.ndarray):
            value = tuple(float(v) for v in value.ravel())
        elif isinstance(value, np.floating | np.integer):
            value = value.item()
        hashable.append((key, value))
    return Task(family, split, int(index), tuple(hashable), tuple(float(f) for f in features))


class TaskEnv(gym.Wrapper):
    """A gymnasium env bound to one task at a time, with the suite's step conventions.

    * ``set_task(task)`` switches the MDP without building a new simulator.
    * Actions arrive in ``[-1, 1]`` and are rescaled to the underlying bounds
      (rlkit's ``NormalizedBoxEnv`` semantics, so a tanh policy fits every family).
    * Episodes are truncated at ``horizon`` steps (a protocol setting).
    * ``info["success"]`` is present when the family defines success;
      ``info["sparse_reward"]`` when the family has a sparse reward for context and evaluation.

    ``env.unwrapped`` is the underlying Metaworld or MuJoCo env.
    """

    def __init__(self, env: gym.Env, family: TaskFamily, horizon: int):
        super().__init__(env)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.family = family
        self.horizon = int(horizon)
        self.task: Task | None = None
        self._t = 0
        low = np.asarray(env.action_space.low, dtype=np.float64)
        high = np.asarray(env.action_space.high, dtype=np.float64)
        self._action_low, self._action_high = low, high
        self._unit_actions = bool(np.all(low == -1.0) and np.all(high == 1.0))
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=low.shape, dtype=np.float32)

    def set_task(self, task: Task) -> None:
        """Switches the env to ``task`` (takes effect at the next ``reset``)."""
        if task.family != self.family.name:
            raise ValueError(f"task of family {task.family!r} given to a {self.family.name!r} env")
        self.family.apply_task(self.env, task)
        self.task = task

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self.task is None:
            raise RuntimeError("call set_task(task) before reset()")
        self._t = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        # ndarray.clip: the same values as np.clip at half its per-call cost (~1.3 µs)
        action = np.asarray(action, dtype=np.float64).clip(-1.0, 1.0)
        if not self._unit_actions:
            action = self._action_low + (action + 1.0) * 0.5 * (
                self._action_high - self._action_low
            )
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        truncated = bool(truncated) or self._t >= self.horizon
        return obs, float(reward), bool(terminated), truncated, info


class TaskFamily(abc.ABC):
    """A distribution over MDPs with shared spaces; the one ABC of ``cocoa.envs``.

    Subclasses set the class attributes and implement ``_make_raw_env``, ``apply_task`` and
    ``make_tasks``.
    """

    name: str  # short name, e.g. "reach"
    full_id: str  # e.g. "reach-v3"
    horizon: int  # default episode length (the thesis protocol's)
    n_train: int
    n_test: int
    oracle_dim: int
    has_success: bool = False
    has_sparse_reward: bool = False
    kind: str = ""  # "metaworld", "locomotion", "point"
    explore_episodes: int = 2  # exploration episodes at meta-test (thesis protocol)
    # PEARL's online evaluation (the ``pearl`` protocol): (prior trajectories, trajectories)
    # per test task, from its configs; None where PEARL defined no such evaluation
    pearl_eval: tuple[int, int] | None = None

    _spaces: tuple[gym.Space, gym.Space] | None = None

    @abc.abstractmethod
    def _make_raw_env(self) -> gym.Env:
        """Builds the underlying env (no task set yet)."""

    @abc.abstractmethod
    def apply_task(self, env: gym.Env, task: Task) -> None:
        """Configures the underlying env ``env`` (as built by ``_make_raw_env``) for ``task``."""

    @abc.abstractmethod
    def make_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        """The fixed train and test tasks for ``seed`` (sizes ``n_train`` and ``n_test``)."""

    def make_env(self, task: Task | None = None, horizon: int | None = None) -> TaskEnv:
        """A ``TaskEnv`` for ``task`` (or for the first training task of seed 0)."""
        env = TaskEnv(self._make_raw_env(), self, horizon or self.horizon)
        if task is None:
            task = self.make_tasks(0)[0][0]
        env.set_task(task)
        return env

    def _probe_spaces(self) -> tuple[gym.Space, gym.Space]:
        if self._spaces is None:
            env = self.make_env()
            self._spaces = (env.observation_space, env.action_space)
            env.close()
        return self._spaces

    @property
    def observation_space(self) -> gym.spaces.Box:
        return self._probe_spaces()[0]

    @property
    def action_space(self) -> gym.spaces.Box:
        """Always ``Box(-1, 1)``: ``TaskEnv`` rescales to the underlying bounds."""
        return self._probe_spaces()[1]

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.observation_space.shape))

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.action_space.shape))

    def describe(self) -> dict[str, Any]:
        """The row ``cocoa envs`` prints for this family."""
        return {
            "name": self.name,
            "full_id": self.full_id,
            "kind": self.kind,
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "horizon": self.horizon,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "oracle_dim": self.oracle_dim,
            "has_success": self.has_success,
        }

    def __repr__(self) -> str:
        return f"<TaskFamily {self.name}>"


# --------------------------------------------------------------------------- registry

_FACTORIES: dict[str, Callable[[], TaskFamily]] = {}
_ALIASES: dict[str, str] = {}
_INSTANCES: dict[str, TaskFamily] = {}


def register_family(
    name: str, factory: Callable[[], TaskFamily], aliases: Sequence[str] = ()
) -> None:
    """Registers a family under its short name (and aliases such as its full id).

    ``factory`` is called lazily, once, on first ``get_family``.
    """
    if name in _FACTORIES:
        raise ValueError(f"task family {name!r} is already registered")
    _FACTORIES[name] = factory
    for alias in aliases:
        if alias != name:
            _ALIASES[alias] = name


def list_families() -> list[str]:
    """Short names of every registered family, in registration order."""
    return list(_FACTORIES)


def resolve_name(name: str) -> str:
    """The short name for ``name`` (short name or alias); ``ValueError`` with suggestions."""
    key = name.strip().lower()
    if key in _FACTORIES:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    candidates = list(_FACTORIES) + list(_ALIASES)
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `cocoa envs` for the list"
    raise ValueError(f"unknown task family {name!r}{hint}")


def get_family(name: str) -> TaskFamily:
    """The family registered as ``name`` (short name or full id, e.g. ``reach`` / ``reach-v3``)."""
    key = resolve_name(name)
    if key not in _INSTANCES:
        _INSTANCES[key] = _FACTORIES[key]()
    return _INSTANCES[key]
