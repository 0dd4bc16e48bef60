"""Name → entry tables for the suite's extension points, and the algorithm entry type.

Every registry (algorithms, similarities, contrastive objectives, augmentations) is a
``Registry``: entries are added by name (usually with the ``register`` decorator), listed in
registration order, and an unknown name is a ``ValueError`` of one line that names the closest
matches and every known name.

This module imports nothing from the rest of the suite, so every module that defines entries
can import it, and the modules that look entries up import those: the arrows run one way
(``cocoa.algorithms`` → ``cocoa.pearl`` → ``cocoa.objectives`` → ``cocoa.contrastive`` →
``cocoa.registry``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import torch

    from cocoa.envs import Task, TaskFamily

    from .types import MetaLearner

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered table of named entries of one ``kind`` (used in error messages).

    ``names`` is the list of registered names, in registration order; it is the same list
    object for the registry's whole life, so a module may export it.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self.entries: dict[str, T] = {}
        self.names: list[str] = []

    def add(self, name: str, entry: T) -> T:
        """Registers ``entry`` under ``name``; ``ValueError`` if the name is taken."""
        if name in self.entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self.entries[name] = entry
        self.names.append(name)
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``add``: ``@registry.register("name")`` on the entry."""
        return lambda entry: self.add(name, entry)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def check(self, name: str) -> None:
        """``ValueError`` (one line: the closest names, then all known ones) unless ``name``
        is registered."""
        if name not in self.entries:
            close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.4)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}; {hint}known: {', '.join(self.names)}")

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (``check`` first)."""
        self.check(name)
        return self.entries[name]

    def summary(self, name: str) -> str:
        """The first line of the entry's docstring ('' without one)."""
        return (inspect.getdoc(self.get(name)) or "").split("\n")[0]

    def listing(self, default: str | None = None) -> list[str]:
        """One line per entry: its name (``default`` marked) and its summary, aligned."""
        mark = "  (default)"
        width = max((len(n) for n in self.names), default=0) + len(mark)
        return [
            f"{name + (mark if name == default else ''):<{width}}  {self.summary(name)}".rstrip()
            for name in self.names
        ]


@dataclass(frozen=True)
class AlgorithmSpec:
    """How to configure and build one algorithm (an entry of ``cocoa.algorithms``).

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
