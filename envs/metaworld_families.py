"""Metaworld v3 task families: ML1 for each of the 50 environments, ML10 and ML45.

Tasks are Metaworld's own: ``metaworld.ML1(env_id, seed)`` (or ``ML10``/``ML45``) builds
them, and each of our ``Task`` values keeps the Metaworld task (its ``env_name`` and pickled
``data``) in its parameters, so ``apply_task`` hands exactly that task to ``env.set_task``.
The goal is hidden from the observation (Metaworld's ML benchmarks set
``partially_observable``: the last 3 of the 39 observation entries are zero).

What the oracle features hold. Every Metaworld task fixes a ``rand_vec``: the vector the env
would otherwise sample at reset. Its layout is env-specific (see each env's
``reset_model``): for 26 envs it has 6 entries, the initial object position followed by the
goal position; for the other 24 (``button-press``, ``door-open``, ``drawer-close``, ...) it has 3
entries, the object position, from which the env derives its goal. ML1 uses the ``rand_vec``
as oracle features (``oracle_dim`` 3 or 6, constant per env); ML10/ML45 prepend a one-hot of
the env class and zero-pad the ``rand_vec`` to 6 entries.

A Metaworld quirk worth knowing: ``ML1(env, seed=s)`` draws its test goals with seed ``s + 1``,
so the test goals of seed ``s`` are the train goals of seed ``s + 1``. Within one seed the
splits are disjoint.

The fast path. ``make_env(..., fast=True)`` switches every Sawyer env it builds to
``metaworld_fast.enable_fast_path``: per-instance methods that give exactly the same
observations, rewards, ``terminated``/``truncated`` and info dicts (checked on all 50 v3 envs,
scripted and random episodes, to 1e-9; in practice bit for bit) about 3x faster per step, by
skipping scipy's ``Rotation`` machinery, filtering contacts with numpy rather than Python loops
and caching MuJoCo name look-ups (see ``cocoa.envs.metaworld_fast``). ``MetaworldFamily.fast_path``
is the default when ``fast`` is not given. Either way ``env.unwrapped`` is the Sawyer env being
stepped, an instance of the stock Metaworld class.

Reward versions. Metaworld v3 keeps two reward functions per env, chosen when the env is built
(``reward_function_version``): ``"v2"``, its default, pays at most 10 per step; ``"v1"`` is the
reward of Metaworld v1, which the thesis ran (reach pays up to about 2,000 per step). Success is
computed by the same reward function, so it may differ between versions too. A family builds
its envs with ``family.reward_version`` (``"v2"`` unless the family was obtained from
``with_reward_version(family, "v1")``); the fast path computes either version exactly. Tasks
do not depend on the version: the variants of one family share their task cache.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import metaworld
import metaworld.env_dict
import numpy as np
from metaworld.types import Task as MetaworldTask

from .base import Task, TaskEnv, TaskFamily, make_task
from .metaworld_fast import enable_fast_path

#: Ids of every Metaworld v3 environment (``reach-v3``, ``push-v3``, ...), in Metaworld's order.
ML1_ENV_IDS: tuple[str, ...] = tuple(metaworld.env_dict.ALL_V3_ENVIRONMENTS)

#: The longest ``rand_vec`` of any v3 env (object position + goal position).
RAND_VEC_DIM = 6

#: Metaworld's default episode limit (``SawyerXYZEnv.max_path_length``).
DEFAULT_MAX_PATH_LENGTH = 500

#: Metaworld's reward functions (``reward_function_version``): v1 is the thesis's (Metaworld
#: v1's), v2 is Metaworld v3's default.
REWARD_VERSIONS: tuple[str, ...] = ("v1", "v2")
DEFAULT_REWARD_VERSION = "v2"


def check_reward_version(version: Any, family: TaskFamily | None = None) -> str:
    """``version`` if it is a reward version that ``family`` can use; else ``ValueError``.

    Every family takes ``"v2"`` (the default: on non-Metaworld families it means "the family's
    only reward"); ``"v1"`` exists only on Metaworld families.
    """
    if version not in REWARD_VERSIONS:
        raise ValueError(f"reward version must be v1 or v2, got {version!r}")
    if family is not None and version != DEFAULT_REWARD_VERSION and family.kind != "metaworld":
        raise ValueError(
            f"reward version {version} applies to Metaworld families only, not {family.name!r}"
        )
    return version


def with_reward_version(family: TaskFamily, version: str) -> TaskFamily:
    """``family`` whose envs use Metaworld's reward function ``version`` (``"v1"``/``"v2"``).

    A non-Metaworld family comes back as it is for ``"v2"`` and is refused for ``"v1"``
    (``ValueError``, one line). Metaworld variants are cached on the family, so asking twice
    gives the same object.
    """
    check_reward_version(version, family)
    if isinstance(family, MetaworldFamily):
        return family.with_reward_version(version)
    return family


def ml1_short_name(env_id: str) -> str:
    """``reach-v3`` -> ``reach``."""
    return env_id.removesuffix("-v3")


def _rand_vec(mw_task: MetaworldTask) -> np.ndarray:
    """The ``rand_vec`` stored in a Metaworld task's pickled data."""
    return np.asarray(pickle.loads(mw_task.data)["rand_vec"], dtype=np.float64)


class MetaworldEnv(gym.Wrapper):
    """Holds one Sawyer env per Metaworld env class and delegates to the current task's one.

    ``set_task`` switches ``self.env`` to the instance of the task's class (built on first
    use), so ``unwrapped`` is always the Sawyer env that is being stepped. An ML1 family has a
    single class; ML10/ML45 switch between classes. All v3 envs share the 39-dim observation
    space and the 4-dim action space ``[-1, 1]``.

    ``reward_version`` is Metaworld's ``reward_function_version`` of every instance (``"v1"``
    or ``"v2"``).

    ``max_path_length`` is forwarded to every instance: Metaworld raises when stepped past it,
    so ``make_env`` sets it to the episode horizon (build Metaworld envs with ``make_env``; a
    ``TaskEnv`` built by hand around ``_make_raw_env()`` allows at most 500 steps).

    With ``fast=True`` every instance runs the exact fast path
    (``metaworld_fast.enable_fast_path``); its class is still the stock one.
    """

    def __init__(
        self,
        classes: Mapping[str, type],
        max_path_length: int,
        fast: bool = False,
        reward_version: str = DEFAULT_REWARD_VERSION,
    ):
        if not classes:
            raise ValueError("MetaworldEnv needs at least one env class")
        self._classes = dict(classes)
        self._instances: dict[str, gym.Env] = {}
        self.max_path_length = int(max_path_length)
        self.fast = bool(fast)
        self.reward_version = check_reward_version(reward_version)
        super().__init__(self._instance(next(iter(self._classes))))

    def _instance(self, env_name: str) -> gym.Env:
        if env_name not in self._instances:
            if env_name not in self._classes:
                raise ValueError(
                    f"Metaworld env {env_name!r} is not one of {sorted(self._classes)}"
                )
            env = self._classes[env_name](reward_function_version=self.reward_version)
            if self.fast:
                enable_fast_path(env)
            env.max_path_length = self.max_path_length
            self._instances[env_name] = env
        return self._instances[env_name]

    def set_max_path_length(self, max_path_length: int) -> None:
        """Sets Metaworld's episode limit on every instance (present and future)."""
        self.max_path_length = int(max_path_length)
        for env in self._instances.values():
            env.max_path_length = self.max_path_length

    def set_task(self, task: MetaworldTask) -> None:
        """Switches to the instance of ``task.env_name`` and sets the task on it."""
        env = self._instance(task.env_name)
        env.set_task(task)
        self.env = env

    def close(self) -> None:
        for env in self._instances.values():
            env.close()


class MetaworldFamily(TaskFamily):
    """What ML1, ML10 and ML45 share: env construction, ``apply_task``, per-seed task cache.

    Subclasses implement ``_env_classes`` and ``_build_tasks``.
    """

    kind = "metaworld"
    horizon = 200  # the thesis protocol; Metaworld v3's own protocol uses 500
    has_success = True
    explore_episodes = 10
    #: Whether ``make_env`` builds the exact fast envs by default (see the module docstring).
    #: True: the fast path matches the stock envs on all 50 v3 envs (tests/test_metaworld_fast.py).
    #: ``COCOA_METAWORLD_FAST=0`` in the environment turns it off for a whole run (sampler
    #: worker processes inherit the variable).
    fast_path: bool = os.environ.get("COCOA_METAWORLD_FAST", "1") != "0"
    #: Metaworld's reward function of every env this family builds (see the module docstring).
    reward_version: str = DEFAULT_REWARD_VERSION

    def __init__(self) -> None:
        self._task_cache: dict[int, tuple[list[Task], list[Task]]] = {}
        self._variants: dict[str, MetaworldFamily] = {self.reward_version: self}

    def with_reward_version(self, version: str) -> MetaworldFamily:
        """This family with Metaworld's reward function ``version``: ``self`` when it already
        has it, else a variant (built once; it shares this family's tasks and spaces)."""
        check_reward_version(version)
        if version not in self._variants:
            variant = copy.copy(self)  # shares the task cache and the variants table
            variant.reward_version = version
            self._variants[version] = variant
        return self._variants[version]

    def _env_classes(self) -> dict[str, type]:
        raise NotImplementedError

    def _build_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        raise NotImplementedError

    def _make_raw_env(self, fast: bool | None = None) -> MetaworldEnv:
        # Metaworld's own limit (500) or more; make_env then sets it to the episode horizon.
        limit = max(DEFAULT_MAX_PATH_LENGTH, self.horizon)
        fast = self.fast_path if fast is None else bool(fast)
        return MetaworldEnv(
            self._env_classes(),
            max_path_length=limit,
            fast=fast,
            reward_version=self.reward_version,
        )

    def make_env(
        self, task: Task | None = None, horizon: int | None = None, fast: bool | None = None
    ) -> TaskEnv:
        """A ``TaskEnv`` whose Metaworld episode limit equals its horizon.

        ``fast``: step the exact fast Sawyer envs (True) or the stock ones (False); None means
        ``self.fast_path``. ``task`` None: the first training task of seed 0.
        """
        env = TaskEnv(self._make_raw_env(fast), self, horizon or self.horizon)
        if task is None:
            task = self.make_tasks(0)[0][0]
        env.set_task(task)
        env.env.set_max_path_length(env.horizon)
        return env

    def _probe_spaces(self) -> tuple[gym.Space, gym.Space]:
        # The spaces need no task: skip the (slow) benchmark construction make_env() would do.
        if self._spaces is None:
            env = TaskEnv(self._make_raw_env(), self, self.horizon)
            self._spaces = (env.observation_space, env.action_space)
            self._inspect(env.unwrapped)
            env.close()
        return self._spaces

    def _inspect(self, sawyer_env: gym.Env) -> None:
        """Reads what a family needs off a freshly built Sawyer env (while probing spaces)."""

    def apply_task(self, env: gym.Env, task: Task) -> None:
        env.set_task(MetaworldTask(env_name=task.param("env_name"), data=task.param("data")))

    def make_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        """Metaworld's tasks for ``seed``; the benchmark is built once per seed and cached."""
        seed = int(seed)
        if seed not in self._task_cache:
            self._task_cache[seed] = self._build_tasks(seed)
        train, test = self._task_cache[seed]
        return list(train), list(test)


class ML1Family(MetaworldFamily):
    """One Metaworld v3 env (``reach-v3``, ...) with Metaworld's ML1 goals.

    Train tasks: all 50 of ``ML1(env_id, seed).train_tasks``; test tasks: the first 10 of
    ``ML1(env_id, seed).test_tasks`` (the thesis protocol). Oracle features: the task's
    ``rand_vec`` (see the module docstring).
    """

    n_train = 50
    n_test = 10

    def __init__(self, env_id: str):
        super().__init__()
        if env_id not in metaworld.env_dict.ALL_V3_ENVIRONMENTS:
            raise ValueError(f"{env_id!r} is not a Metaworld v3 environment")
        self.env_id = env_id
        self.full_id = env_id
        self.name = ml1_short_name(env_id)
        self._oracle_dim: int | None = None

    @property
    def oracle_dim(self) -> int:  # type: ignore[override]
        """Length of this env's ``rand_vec`` (3 or 6), read off a fresh env."""
        if self._oracle_dim is None:
            self._probe_spaces()
        return self._oracle_dim

    def _inspect(self, sawyer_env: gym.Env) -> None:
        # the space Metaworld draws rand_vec from: its size is the rand_vec's
        self._oracle_dim = int(sawyer_env._random_reset_space.low.size)

    def _env_classes(self) -> dict[str, type]:
        return {self.env_id: metaworld.env_dict.ALL_V3_ENVIRONMENTS[self.env_id]}

    def _task(self, split: str, index: int, mw_task: MetaworldTask) -> Task:
        return make_task(
            self.name,
            split,
            index,
            _rand_vec(mw_task),
            env_name=mw_task.env_name,
            data=mw_task.data,
        )

    def _build_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        benchmark = metaworld.ML1(self.env_id, seed=seed)
        train = [self._task("train", i, t) for i, t in enumerate(benchmark.train_tasks)]
        test = [self._task("test", i, t) for i, t in enumerate(benchmark.test_tasks[: self.n_test])]
        return train[: self.n_train], test


class MultiEnvMLFamily(MetaworldFamily):
    """ML10 or ML45: train tasks on Metaworld's train env classes, test tasks on its test ones.

    Tasks come from ``metaworld.ML10(seed)`` / ``ML45(seed)``. Per class we keep the first
    ``train_goals_per_class`` train goals (default 50: all of Metaworld's) and the first
    ``test_goals_per_class`` test goals (default 10, as the ML1 protocol keeps 10 test goals per
    env), class by class in Metaworld's order. ML10: 10 x 50 = 500 train, 5 x 10 = 50 test;
    ML45: 45 x 50 = 2250 train, 5 x 10 = 50 test.

    Oracle features: one-hot of the env class over the train classes followed by the test
    classes, then the ``rand_vec`` zero-padded to ``RAND_VEC_DIM``.

    Building ``ML45`` takes Metaworld about half a minute (it resets every class 100 times);
    it happens once per seed, on the first ``make_tasks``.
    """

    def __init__(
        self,
        name: str,
        benchmark: Callable[..., Any],
        classes: Mapping[str, Mapping[str, type]],
        train_goals_per_class: int = 50,
        test_goals_per_class: int = 10,
    ):
        super().__init__()
        self.name = name
        self.full_id = f"{name}-v3"
        self._benchmark = benchmark
        self._train_classes = dict(classes["train"])
        self._test_classes = dict(classes["test"])
        self._all_classes = {**self._train_classes, **self._test_classes}
        self._class_index = {env_name: i for i, env_name in enumerate(self._all_classes)}
        self.train_goals_per_class = int(train_goals_per_class)
        self.test_goals_per_class = int(test_goals_per_class)
        self.n_train = self.train_goals_per_class * len(self._train_classes)
        self.n_test = self.test_goals_per_class * len(self._test_classes)
        self.oracle_dim = len(self._all_classes) + RAND_VEC_DIM

    @property
    def train_env_names(self) -> list[str]:
        """Metaworld ids of the train env classes."""
        return list(self._train_classes)

    @property
    def test_env_names(self) -> list[str]:
        """Metaworld ids of the test env classes."""
        return list(self._test_classes)

    def _env_classes(self) -> dict[str, type]:
        return dict(self._all_classes)

    def _features(self, mw_task: MetaworldTask) -> np.ndarray:
        rand_vec = _rand_vec(mw_task)
        if rand_vec.size > RAND_VEC_DIM:
            raise ValueError(f"{mw_task.env_name}: rand_vec longer than {RAND_VEC_DIM}")
        features = np.zeros(self.oracle_dim)
        features[self._class_index[mw_task.env_name]] = 1.0
        n_classes = len(self._all_classes)
        features[n_classes : n_classes + rand_vec.size] = rand_vec
        return features

    def _select(
        self, split: str, mw_tasks: list[MetaworldTask], per_class: int, env_names: list[str]
    ) -> list[Task]:
        kept: dict[str, list[MetaworldTask]] = {env_name: [] for env_name in env_names}
        for mw_task in mw_tasks:
            if len(kept[mw_task.env_name]) < per_class:
                kept[mw_task.env_name].append(mw_task)
        ordered = [mw_task for env_name in env_names for mw_task in kept[env_name]]
        return [
            make_task(
                self.name,
                split,
                i,
                self._features(mw_task),
                env_name=mw_task.env_name,
                data=mw_task.data,
            )
            for i, mw_task in enumerate(ordered)
        ]

    def _build_tasks(self, seed: int) -> tuple[list[Task], list[Task]]:
        benchmark = self._benchmark(seed=seed)
        train = self._select(
            "train", benchmark.train_tasks, self.train_goals_per_class, self.train_env_names
        )
        test = self._select(
            "test", benchmark.test_tasks, self.test_goals_per_class, self.test_env_names
        )
        return train, test


def ml1_family(env_id: str) -> Callable[[], ML1Family]:
    """A lazy factory for the ML1 family of ``env_id``."""
    return lambda: ML1Family(env_id)


def ml10_family() -> MultiEnvMLFamily:
    """Metaworld's ML10: 10 train env classes, 5 test env classes."""
    return MultiEnvMLFamily("ml10", metaworld.ML10, metaworld.env_dict.ML10_V3)


def ml45_family() -> MultiEnvMLFamily:
    """Metaworld's ML45: 45 train env classes, 5 test env classes."""
    return MultiEnvMLFamily("ml45", metaworld.ML45, metaworld.env_dict.ML45_V3)
