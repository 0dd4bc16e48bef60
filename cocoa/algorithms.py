"""The algorithm registry: name → how to build its config preset and its MetaLearner.

Built in: ``cocoa`` and ``pearl`` (``cocoa.pearl``). Baselines register themselves in
``cocoa.baselines``. Adding an algorithm is one ``register_algorithm`` call.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cocoa.envs import Task, TaskFamily

from .types import MetaLearner

PRESETS = ("paper", "quick")


@dataclass(frozen=True)
class AlgorithmSpec:
    """How to configure and build one algorithm.

    Attributes:
        name: the ``--algo`` name.
        config_cls: its frozen config dataclass.
        preset: ``(family, preset_name) -> config`` with the family's settings.
        build: ``(config, family, train_tasks, device, seed) -> MetaLearner``.
        parallel_sampling: the learner has ``set_workers(n)``: it collects through a
            ``cocoa.sampler.Sampler`` and can use ``n`` worker processes.
    """

    name: str
    config_cls: type
    preset: Callable[[TaskFamily, str], Any]
    build: Callable[[Any, TaskFamily, list[Task], torch.device, int], MetaLearner]
    parallel_sampling: bool = False

    def check_workers(self, workers: int) -> None:
        """``ValueError`` unless this algorithm can collect on ``workers`` processes."""
        if workers > 1 and not self.parallel_sampling:
            raise ValueError(
                f"--workers applies to cocoa and pearl; {self.name} collects in-process"
            )


_REGISTRY: dict[str, AlgorithmSpec] = {}
_LOADED = False


def register_algorithm(spec: AlgorithmSpec) -> None:
    """Adds ``spec`` under ``spec.name``."""
    if spec.name in _REGISTRY:
        raise ValueError(f"algorithm {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def _load_builtin() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import cocoa.baselines  # noqa: F401  (registers the baselines)
        import cocoa.pearl  # noqa: F401  (registers cocoa and pearl)


def list_algorithms() -> list[str]:
    """Every registered algorithm name."""
    _load_builtin()
    return list(_REGISTRY)


def get_algorithm(name: str) -> AlgorithmSpec:
    """The spec registered as ``name``; ``ValueError`` naming the closest names otherwise."""
    _load_builtin()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"choose from {', '.join(_REGISTRY)}"
    raise ValueError(f"unknown algorithm {name!r}; {hint}")


def first_iteration_steps(algo: str, algo_config: Any, family: TaskFamily, n_train: int) -> int:
    """Env steps the first training iteration of a built-in algorithm collects, counting
    full-horizon episodes (0 for an algorithm this function does not know).

    A run stops after the first iteration that reaches its budget, so this is the smallest
    budget that means what it says.
    """
    import math

    c, h = algo_config, family.horizon

    def whole(steps: int, at_least_one: bool = False) -> int:
        n = math.ceil(steps / h)
        return max(n, 1 if at_least_one else 0) * h

    if algo in ("cocoa", "pearl") or hasattr(c, "num_extra_rl_steps_posterior"):
        phases = (c.num_steps_prior, c.num_steps_posterior, c.num_extra_rl_steps_posterior)
        return n_train * whole(c.num_initial_steps) + c.num_tasks_sample * sum(
            whole(s) for s in phases
        )
    if algo == "oracle-sac":
        per_task = whole(c.steps_per_task, True)
        return n_train * whole(c.initial_steps, True) + min(c.num_tasks_sample, n_train) * per_task
    if algo == "maml-trpo":
        return c.meta_batch_size * (c.inner_episodes + c.outer_episodes) * h
    if algo == "rl2-ppo":
        return c.meta_batch_size * c.episodes_per_trial * h
    return 0


def check_budget(cfg: Any) -> None:
    """``ValueError`` (one line naming the minimum) when ``cfg.steps`` is positive but below
    what the first training iteration collects: the run would overshoot its budget by more
    than the budget itself. ``steps = 0`` (meta-test the untrained agent only) is allowed."""
    from cocoa.envs import get_family
    from cocoa.task_samplers import TaskSampler

    if cfg.steps <= 0:
        return
    family = get_family(cfg.env)
    n_train = len(TaskSampler(family, cfg.task_seed).train_tasks())
    minimum = first_iteration_steps(cfg.algo, cfg.algo_config, family, n_train)
    if cfg.steps < minimum:
        raise ValueError(
            f"--steps {cfg.steps:,} is below one training iteration: {cfg.algo} on {cfg.env} "
            f"collects {minimum:,} env steps in its first; use --steps {minimum} or more "
            "(or 0 to meta-test the untrained agent only)"
        )
