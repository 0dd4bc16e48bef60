"""One meta-test evaluator for every MetaLearner: explore → adapt → evaluate, per test task.

Protocols (by name):

* ``thesis`` (default): the family's horizon (200 on Metaworld and MuJoCo, 20 on point
  robots); 10 exploration episodes on Metaworld, 2 on MuJoCo and the sparse point robot, 1 on
  the dense point robot (PEARL's counts); then 3 evaluation episodes with the adapted policy.
* ``metaworld-v3``: Metaworld's own meta-learning protocol: horizon 500, 10 adaptation
  episodes, then 3 evaluation episodes; success if any step succeeds.

Reported per task: the mean return (of the context reward: sparse where the family has one)
and the success rate of the evaluation episodes; the overall figures are means over tasks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cocoa.envs import Task, TaskFamily

from .rollout import rollout
from .types import MetaLearner

PROTOCOLS = ("thesis", "metaworld-v3")


@dataclass(frozen=True)
class EvalProtocol:
    """How many episodes of which length are used to explore and to evaluate."""

    name: str
    horizon: int
    n_explore: int
    n_eval: int


def get_protocol(name: str, family: TaskFamily) -> EvalProtocol:
    """The protocol ``name`` resolved for ``family``; ``ValueError`` if it does not apply."""
    if name == "thesis":
        return EvalProtocol(name, family.horizon, family.explore_episodes, 3)
    if name == "metaworld-v3":
        if family.kind != "metaworld":
            raise ValueError(
                f"protocol 'metaworld-v3' applies to Metaworld families, not {family.name!r}"
            )
        return EvalProtocol(name, 500, 10, 3)
    raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class TaskResult:
    """The evaluation of one test task."""

    task: int
    explore_returns: list[float]
    returns: list[float]
    successes: list[bool]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes))


@dataclass(frozen=True)
class EvalResult:
    """The evaluation over all test tasks."""

    protocol: str
    tasks: list[TaskResult]
    has_success: bool

    @property
    def mean_return(self) -> float:
        return float(np.mean([t.mean_return for t in self.tasks]))

    @property
    def success_rate(self) -> float:
        return float(np.mean([t.success_rate for t in self.tasks]))

    def metrics(self, prefix: str = "meta_test") -> dict[str, float]:
        """The scalars logged in ``progress.csv``."""
        out = {f"{prefix}/return": self.mean_return}
        if self.has_success:
            out[f"{prefix}/success"] = self.success_rate
        return out

    def records(self) -> list[dict]:
        """Per-task records for the run directory."""
        return [
            asdict(t) | {"mean_return": t.mean_return, "success_rate": t.success_rate}
            for t in self.tasks
        ]


def evaluate(
    learner: MetaLearner,
    family: TaskFamily,
    tasks: list[Task],
    protocol: EvalProtocol,
    seed: int = 0,
) -> EvalResult:
    """Meta-tests ``learner`` on ``tasks``: for each, a fresh exploration policy runs
    ``protocol.n_explore`` episodes, ``learner.adapt`` turns them into the evaluated policy,
    which runs ``protocol.n_eval`` episodes. ``seed`` seeds each task's env resets."""
    env = family.make_env(tasks[0], horizon=protocol.horizon)
    results = []
    for i, task in enumerate(tasks):
        env.set_task(task)
        # seeds the env's own reset noise (nothing global) at the task's first reset
        first_seed = iter([seed * 1_000_003 + i])
        policy = learner.exploration_policy(task)
        explore = [
            rollout(env, policy, seed=next(first_seed, None)) for _ in range(protocol.n_explore)
        ]
        adapted = learner.adapt(policy, explore)
        evals = [rollout(env, adapted, seed=next(first_seed, None)) for _ in range(protocol.n_eval)]
        results.append(
            TaskResult(
                task=task.index,
                explore_returns=[e.ret for e in explore],
                returns=[e.ret for e in evals],
                successes=[e.success for e in evals],
            )
        )
    env.close()
    return EvalResult(protocol.name, results, family.has_success)
