"""The algorithm registry: name → how to build its config preset and its MetaLearner.

Built in: ``cocoa`` and ``pearl`` (``cocoa.pearl``) and the baselines (``cocoa.baselines``).
Each of those modules lists its specs in a module-level ``ALGORITHMS`` tuple and imports
nothing from here: this module imports them (on the first look-up, so that the command line
starts without torch's learners), never the other way round. A user adds an algorithm with
one ``register_algorithm`` call.
"""

from __future__ import annotations

import importlib
from typing import Any

from cocoa.envs import TaskFamily

from .registry import AlgorithmSpec, Registry

__all__ = [
    "PRESETS",
    "AlgorithmSpec",
    "check_budget",
    "first_iteration_steps",
    "get_algorithm",
    "list_algorithms",
    "register_algorithm",
]

PRESETS = ("paper", "quick")

# modules whose ``ALGORITHMS`` tuple holds the built-in specs, in listing order
_BUILTIN_MODULES = ("cocoa.baselines", "cocoa.pearl")
_ALGORITHMS: Registry[AlgorithmSpec] = Registry("algorithm")
_LOADED = False


def register_algorithm(spec: AlgorithmSpec) -> None:
    """Adds ``spec`` under ``spec.name``."""
    _ALGORITHMS.add(spec.name, spec)


def _load_builtin() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in _BUILTIN_MODULES:
            for spec in importlib.import_module(module).ALGORITHMS:
                register_algorithm(spec)


def list_algorithms() -> list[str]:
    """Every registered algorithm name."""
    _load_builtin()
    return list(_ALGORITHMS.names)


def get_algorithm(name: str) -> AlgorithmSpec:
    """The spec registered as ``name``; ``ValueError`` naming the closest names otherwise."""
    _load_builtin()
    return _ALGORITHMS.get(name)


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
