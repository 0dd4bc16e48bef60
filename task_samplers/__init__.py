"""Fixed, seeded, disjoint train/test task splits for every family.

``get_sampler(name, seed)`` returns a ``TaskSampler`` whose ``train_tasks()`` and
``test_tasks()`` are the same lists for the same seed, with the protocol's sizes
(50/10 per Metaworld ML1 env as in the thesis; PEARL's counts for MuJoCo and point robots).
"""

from __future__ import annotations

from functools import cached_property

from cocoa.envs import Task, TaskFamily, get_family


class TaskSampler:
    """The train and test tasks of one family for one seed."""

    def __init__(self, family: TaskFamily, seed: int = 0):
        self.family = family
        self.seed = int(seed)

    @cached_property
    def _splits(self) -> tuple[list[Task], list[Task]]:
        train, test = self.family.make_tasks(self.seed)
        if len(train) != self.family.n_train or len(test) != self.family.n_test:
            raise RuntimeError(
                f"{self.family.name}: expected {self.family.n_train}/{self.family.n_test} tasks, "
                f"got {len(train)}/{len(test)}"
            )
        overlap = {t.params for t in train} & {t.params for t in test}
        if overlap:
            raise RuntimeError(f"{self.family.name}: {len(overlap)} tasks are in both splits")
        return train, test

    def train_tasks(self) -> list[Task]:
        """The meta-training tasks (a new list each call; the tasks are immutable)."""
        return list(self._splits[0])

    def test_tasks(self) -> list[Task]:
        """The held-out meta-test tasks."""
        return list(self._splits[1])


def get_sampler(name: str, seed: int = 0) -> TaskSampler:
    """The task sampler of family ``name`` (short name or full id) for ``seed``."""
    return TaskSampler(get_family(name), seed)


__all__ = ["TaskSampler", "get_sampler"]
