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
